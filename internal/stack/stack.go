// Package stack grows a goroutine's stack at a point of the caller's
// choosing.
//
// Go starts each goroutine with a small stack (the runtime's adaptive
// start, 2–4 KiB in our daemons) and copies it to one twice as large when
// a call needs more. The copy costs for each frame on the stack, since the
// runtime decodes each frame's tables to move its pointers: growing deep in
// a call chain (in the HPKE key schedule, a DNS parser, AES-GCM under a TLS
// write) costs two to three times what growing near the goroutine's start
// does. A goroutine that will go deep, such as net/http's goroutine for
// each HTTP/2 request, calls Grow first.
package stack

// room is what Grow asks for: with the frames below it and the runtime's
// guard, past the 4 KiB a goroutine usually starts with and within the
// 8 KiB that the deepest request path needs, so that one copy suffices.
const room = 3 << 10

// Grow makes room for about 3 KiB of frames beyond the caller's, copying
// the stack now if it is smaller; it costs clearing 3 KiB when the stack
// is already large enough.
//
//go:noinline
func Grow() {
	var b [room]byte
	touch(b[:])
}

// touch keeps Grow's array, and so its frame, from being optimised away.
//
//go:noinline
func touch([]byte) {}
