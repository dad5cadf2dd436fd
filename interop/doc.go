// Package interop holds end-to-end tests of the real binaries: odoh-target,
// odoh-proxy and the odoh CLI, built from this module and started as
// processes on loopback, with a real Unbound (Debian's unbound) as the
// target's upstream. Nothing here is a test double: these tests check the
// system as an operator deploys it and as a user runs it. Where the
// binaries cannot be configured for a case (the HPKE suites beyond the
// default, in TestSuitesEndToEnd), the real packages run in-process on
// real sockets instead.
package interop
