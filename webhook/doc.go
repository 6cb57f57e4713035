// Package webhook signs and verifies the HTTP requests a Dionysia cluster
// sends to webhook receivers and publish-admission endpoints.
//
// The scheme is Stripe's: the header
//
//	Dionysia-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
//
// binds the exact body bytes to the time they were signed, so a receiver can
// refuse both a forged body and an old request replayed later. The package
// is pure (no I/O, no clock: callers pass the time) and imports nothing of
// this project, so receivers written in Go may import it for Verify.
package webhook
