package bench

import "crypto/rand"

// writeModule is the smallest WASI command that writes: its one function
// calls fd_write at once, so the first byte on stdout marks the first
// instruction run. By hand, as the WAT:
//
//	(module
//	  (import "wasi_snapshot_preview1" "fd_write"
//	    (func $fd_write (param i32 i32 i32 i32) (result i32)))
//	  (memory (export "memory") 1)
//	  (data (i32.const 0) "\08\00\00\00\01\00\00\00x") ;; iovec {buf: 8, len: 1}, then "x"
//	  (func (export "_start")
//	    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 12)))))
var writeModule = []byte{
	0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
	0x01, 0x0c, 0x02, // types: two
	0x60, 0x04, 0x7f, 0x7f, 0x7f, 0x7f, 0x01, 0x7f, // 0: (i32 i32 i32 i32) -> i32
	0x60, 0x00, 0x00, // 1: () -> ()
	0x02, 0x23, 0x01, // imports: one
	0x16, 'w', 'a', 's', 'i', '_', 's', 'n', 'a', 'p', 's', 'h', 'o', 't', '_', 'p', 'r', 'e', 'v', 'i', 'e', 'w', '1',
	0x08, 'f', 'd', '_', 'w', 'r', 'i', 't', 'e', 0x00, 0x00, // function 0 of type 0
	0x03, 0x02, 0x01, 0x01, // functions: one, of type 1 (function 1)
	0x05, 0x03, 0x01, 0x00, 0x01, // memories: one, at least 1 page
	0x07, 0x13, 0x02, // exports: two
	0x06, 'm', 'e', 'm', 'o', 'r', 'y', 0x02, 0x00, // memory 0
	0x06, '_', 's', 't', 'a', 'r', 't', 0x00, 0x01, // function 1
	0x0a, 0x0f, 0x01, 0x0d, 0x00, // code: one body of 13 bytes, no locals
	0x41, 0x01, 0x41, 0x00, 0x41, 0x01, 0x41, 0x0c, // i32.const 1, 0, 1, 12
	0x10, 0x00, 0x1a, 0x0b, // call 0, drop, end
	0x0b, 0x0f, 0x01, 0x00, 0x41, 0x00, 0x0b, 0x09, // data: one active segment at i32.const 0, 9 bytes
	0x08, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 'x',
}

// uncachedModule is writeModule with a custom section holding a random
// nonce: the same code under a CID no provider has seen, so that it is
// fetched and compiled.
func uncachedModule() []byte {
	m := append([]byte(nil), writeModule...)
	m = append(m, 0x00, 0x16, 0x05, 'n', 'o', 'n', 'c', 'e') // custom section "nonce", 22 bytes
	nonce := make([]byte, 16)
	rand.Read(nonce)
	return append(m, nonce...)
}
