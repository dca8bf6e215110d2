;; wasm-banner: connects to a TCP port and reports the banner the service sends first.
;; Written for RustMap as the example of a WASM script (ABI: docs/wasm-scripts.md).
;; Run it with `--script path/to/wasm-banner.wat` on a RustMap built with `--features wasm`.
(module
  (import "rustmap" "host_ip" (func $host_ip (param i32 i32) (result i32)))
  (import "rustmap" "connect" (func $connect (param i32 i32 i32) (result i32)))
  (import "rustmap" "recv" (func $recv (param i32 i32 i32 i32) (result i32)))
  (import "rustmap" "close" (func $close (param i32) (result i32)))
  (import "rustmap" "output" (func $output (param i32 i32)))
  (import "rustmap" "log" (func $log (param i32 i32)))

  ;; One page: the host address at 0 (64 bytes), messages at 64, the banner at 1024 (4 KiB).
  (memory (export "memory") 1)
  (data (i32.const 64) "no banner")

  (@custom "rustmap" "{\"description\": \"Connects to an open TCP port and reports the banner the service sends first.\", \"categories\": [\"discovery\", \"safe\"], \"author\": [\"RustMap developers\"], \"license\": \"MIT OR Apache-2.0\"}")

  ;; Every TCP port.
  (func (export "portrule") (param $port i32) (param $proto i32) (result i32)
    (i32.eq (local.get $proto) (i32.const 6)))

  (func (export "action") (param $port i32) (param $proto i32) (result i32)
    (local $len i32) (local $sock i32) (local $n i32) (local $last i32)
    (local.set $len (call $host_ip (i32.const 0) (i32.const 64)))
    (local.set $sock (call $connect (i32.const 0) (local.get $len) (local.get $port)))
    ;; Not reachable: no output, as a script that found nothing.
    (if (i32.lt_s (local.get $sock) (i32.const 0)) (then (return (i32.const 0))))
    (local.set $n (call $recv (local.get $sock) (i32.const 1024) (i32.const 4096) (i32.const 5000)))
    (drop (call $close (local.get $sock)))
    (if (i32.le_s (local.get $n) (i32.const 0))
      (then
        (call $log (i32.const 64) (i32.const 9))
        (return (i32.const 0))))
    ;; Drop the line ending(s).
    (block $done
      (loop $trim
        (br_if $done (i32.eqz (local.get $n)))
        (local.set $last (i32.load8_u (i32.add (i32.const 1023) (local.get $n))))
        (br_if $done (i32.and (i32.ne (local.get $last) (i32.const 10)) (i32.ne (local.get $last) (i32.const 13))))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br $trim)))
    (call $output (i32.const 1024) (local.get $n))
    (i32.const 0))
)
