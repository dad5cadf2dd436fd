package odoh

import (
	"bytes"
	"testing"
	"time"
)

// benchQuery is a typical 40-byte DNS query; benchAnswer a typical answer.
var (
	benchQuery  = bytes.Repeat([]byte{0x5a}, 40)
	benchAnswer = bytes.Repeat([]byte{0xa5}, 120)
)

func benchSetup(b *testing.B) (*PrivateKey, []byte) {
	key, err := GenerateKey(DefaultSuite())
	if err != nil {
		b.Fatal(err)
	}
	msg, _, err := SealQuery(key.Config(), benchQuery)
	if err != nil {
		b.Fatal(err)
	}
	return key, msg
}

// BenchmarkClientSealQuery: what a client pays per query.
func BenchmarkClientSealQuery(b *testing.B) {
	key, _ := benchSetup(b)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := SealQuery(key.Config(), benchQuery); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClientOpenResponse: what a client pays per answer.
func BenchmarkClientOpenResponse(b *testing.B) {
	key, _ := benchSetup(b)
	msg, qc, _ := SealQuery(key.Config(), benchQuery)
	m, _ := ParseMessage(msg)
	q, _ := key.OpenQuery(m)
	resp, _ := q.SealResponse(benchAnswer)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := qc.OpenResponse(resp); err != nil {
			b.Fatal(err)
		}
	}
}

// targetTransaction is the target's whole protocol work for one query.
func targetTransaction(key *PrivateKey, msg []byte) error {
	m, err := ParseMessage(msg)
	if err != nil {
		return err
	}
	q, err := key.OpenQuery(m)
	if err != nil {
		return err
	}
	_, err = q.SealResponse(benchAnswer)
	return err
}

// BenchmarkTargetTransaction: open a query and seal its response.
func BenchmarkTargetTransaction(b *testing.B) {
	key, msg := benchSetup(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := targetTransaction(key, msg); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTargetBareCircl: the bare circl operations a target cannot
// avoid (see hpke_test.go), the floor for BenchmarkTargetTransaction.
func BenchmarkTargetBareCircl(b *testing.B) {
	bare := newBareTarget(b)
	b.ReportAllocs()
	for b.Loop() {
		bare.run(b)
	}
}

// BenchmarkTargetOverhead runs a transaction and the bare circl operations
// alternately in one loop, so that both see the same machine load, and
// reports their cost ratio (the target: at most 1.15).
func BenchmarkTargetOverhead(b *testing.B) {
	key, msg := benchSetup(b)
	bare := newBareTarget(b)
	var ours, floor time.Duration
	for b.Loop() {
		t0 := time.Now()
		if err := targetTransaction(key, msg); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		bare.run(b)
		floor += time.Since(t1)
		ours += t1.Sub(t0)
	}
	b.ReportMetric(float64(ours.Nanoseconds())/float64(b.N), "odoh-ns/tx")
	b.ReportMetric(float64(floor.Nanoseconds())/float64(b.N), "circl-ns/tx")
	b.ReportMetric(float64(ours)/float64(floor), "ratio")
}
