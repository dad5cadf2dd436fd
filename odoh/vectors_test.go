package odoh

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// The de-facto interop set: Cloudflare's odoh-go test vectors, read from
// ../shared/vectors beside the repository (never copied into it).
type vectorFile []struct {
	KEM          uint16   `json:"kem_id"`
	KDF          uint16   `json:"kdf_id"`
	AEAD         uint16   `json:"aead_id"`
	Configs      hexBytes `json:"odohconfigs"`
	Seed         hexBytes `json:"public_key_seed"`
	KeyID        hexBytes `json:"key_id"`
	Transactions []struct {
		Query             hexBytes `json:"query"`
		QueryPadding      int      `json:"queryPaddingLength"`
		Response          hexBytes `json:"response"`
		ResponsePadding   int      `json:"responsePaddingLength"`
		ObliviousQuery    hexBytes `json:"obliviousQuery"`
		ObliviousResponse hexBytes `json:"obliviousResponse"`
	} `json:"transactions"`
}

type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	*h = v
	return err
}

// vectorsPath finds the vectors: $ODOH_VECTORS, else ../shared/vectors next
// to the module root.
func vectorsPath() string {
	if p := os.Getenv("ODOH_VECTORS"); p != "" {
		return p
	}
	dir, _ := os.Getwd()
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return filepath.Join(d, "..", "shared", "vectors", "odoh-go-test-vectors.json")
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

// readVectors reads and decodes the vectors file.
func readVectors() (vectorFile, error) {
	p := vectorsPath()
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var v vectorFile
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", p, err)
	}
	if len(v) == 0 {
		return nil, fmt.Errorf("%s holds no vectors", p)
	}
	return v, nil
}

// loadVectors returns the vectors, failing under CI=true when they are
// missing and skipping visibly elsewhere.
func loadVectors(t testing.TB) vectorFile {
	t.Helper()
	v, err := readVectors()
	if errors.Is(err, fs.ErrNotExist) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("test vectors are required in CI: %v", err)
		}
		t.Skipf("SKIP: test vectors not found (%v); set ODOH_VECTORS", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVectors(t *testing.T) {
	for _, v := range loadVectors(t) {
		s := Suite{KEM: KEM(v.KEM), KDF: KDF(v.KDF), AEAD: AEAD(v.AEAD)}
		t.Run(s.String(), func(t *testing.T) {
			key, err := DeriveKey(s, v.Seed)
			if err != nil {
				t.Fatal(err)
			}
			got, err := MarshalConfigs(key.Config())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, v.Configs) {
				t.Fatalf("configs from seed:\n got %x\nwant %x", got, v.Configs)
			}
			cfgs, err := ParseConfigs(v.Configs)
			if err != nil {
				t.Fatal(err)
			}
			if len(cfgs) != 1 || !cfgs[0].Equal(key.Config()) {
				t.Fatalf("parsed configs %v, want the derived one", cfgs)
			}
			if !bytes.Equal(key.KeyID(), v.KeyID) || !bytes.Equal(cfgs[0].KeyID(), v.KeyID) {
				t.Fatalf("key_id %x, want %x", key.KeyID(), v.KeyID)
			}
			if len(v.Transactions) != 16 {
				t.Fatalf("%d transactions, want 16", len(v.Transactions))
			}
			for i, tx := range v.Transactions {
				m, err := ParseMessage(tx.ObliviousQuery)
				if err != nil {
					t.Fatalf("tx %d: %v", i, err)
				}
				q, err := key.OpenQuery(m)
				if err != nil {
					t.Fatalf("tx %d: opening query: %v", i, err)
				}
				if !bytes.Equal(q.DNS, tx.Query) {
					t.Fatalf("tx %d: query %x, want %x", i, q.DNS, tx.Query)
				}
				if pad := len(q.plain) - plaintextLen(len(q.DNS), 0); pad != tx.QueryPadding {
					t.Fatalf("tx %d: query padding %d, want %d", i, pad, tx.QueryPadding)
				}
				// The client side: the same secret and plaintext open the response.
				qc := &QueryContext{suite: q.suite, secret: q.secret, plain: q.plain}
				resp, err := qc.OpenResponse(tx.ObliviousResponse)
				if err != nil {
					t.Fatalf("tx %d: opening response: %v", i, err)
				}
				if !bytes.Equal(resp, tx.Response) {
					t.Fatalf("tx %d: response %x, want %x", i, resp, tx.Response)
				}
				rm, err := ParseMessage(tx.ObliviousResponse)
				if err != nil {
					t.Fatal(err)
				}
				resealed, err := sealResponse(q.suite, q.secret, q.plain, rm.KeyID, tx.Response, tx.ResponsePadding)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(resealed, tx.ObliviousResponse) {
					t.Fatalf("tx %d: resealed response differs:\n got %x\nwant %x", i, resealed, tx.ObliviousResponse)
				}
			}
		})
	}
}
