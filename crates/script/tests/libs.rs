//! The NSE-named libraries, exercised from Lua as scripts use them; sockets against a local
//! echo-style daemon on 127.0.0.1 only.

use rustmap_script::{libs, Context, Limits, Sandbox, ScriptArgs, Targets};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const LOCAL: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

async fn eval(source: &str) -> String {
    let sandbox = Sandbox::new(Limits { timeout: Duration::from_secs(10), ..Limits::default() }).unwrap();
    let ctx = Context { targets: Targets::new([LOCAL]), args: ScriptArgs::parse("k=v").unwrap(), ..Context::default() };
    libs::install(&sandbox, Arc::new(ctx)).unwrap();
    let f = sandbox.load(source, "t").unwrap();
    match sandbox.call::<mlua::Value>(&f, ()).await {
        Ok(v) => v.to_string().unwrap_or_default(),
        Err(e) => panic!("{source}: {e:?}"),
    }
}

#[tokio::test]
async fn stdnse_helpers() {
    let s = "local stdnse = require 'stdnse'\nreturn ";
    assert_eq!(eval(&format!("{s} stdnse.tohex('\\1\\171')")).await, "01ab");
    assert_eq!(eval(&format!("{s} stdnse.tohex('\\1\\2\\3', {{separator=':'}})")).await, "01:02:03");
    assert_eq!(eval(&format!("{s} table.concat(stdnse.strsplit(',%s*', 'a, b,c'), '|')")).await, "a|b|c");
    assert_eq!(eval(&format!("{s} stdnse.format_output(false, 'nope')")).await, "ERROR: nope");
    assert_eq!(eval(&format!("{s} stdnse.get_script_args('k')")).await, "v");
    let ordered = "local stdnse = require 'stdnse'\nlocal t = stdnse.output_table() t.z = 1 t.a = 2 t.m = 3\nlocal ks = {} for k in pairs(t) do ks[#ks+1] = k end return table.concat(ks, ',')";
    assert_eq!(eval(ordered).await, "z,a,m");
    let rendered = "local stdnse = require 'stdnse'\nlocal t = stdnse.output_table() t.name = 'x' t.list = {'a', 'b'}\nreturn stdnse.format_output(true, t)";
    assert_eq!(eval(rendered).await, "\n  name: x\n  list: \n    a\n    b");
    assert_eq!(
        eval("local stdnse = require 'stdnse' stdnse.sleep(0.01) stdnse.debug1('x %d', 1) return 'slept'").await,
        "slept"
    );
}

#[tokio::test]
async fn shortport_rules() {
    let rule =
        |r: &str, port: &str| format!("local shortport = require 'shortport'\nreturn tostring(({r})({{}}, {port}))");
    let http = "{number=8080, protocol='tcp', state='open'}";
    assert_eq!(eval(&rule("shortport.http", http)).await, "true");
    assert_eq!(
        eval(&rule("shortport.http", "{number=22, protocol='tcp', state='open', service='ssh'}")).await,
        "false"
    );
    assert_eq!(
        eval(&rule("shortport.http", "{number=22, protocol='tcp', state='open', service='http'}")).await,
        "true"
    );
    assert_eq!(eval(&rule("shortport.http", "{number=80, protocol='tcp', state='closed'}")).await, "false");
    assert_eq!(
        eval(&rule("shortport.portnumber({22, 2222})", "{number=2222, protocol='tcp', state='open'}")).await,
        "true"
    );
    assert_eq!(
        eval(&rule("shortport.service('ssh')", "{number=1, protocol='tcp', state='open', service='ssh'}")).await,
        "true"
    );
    assert_eq!(eval(&rule("shortport.ssl", "{number=443, protocol='tcp', state='open'}")).await, "true");
}

#[tokio::test]
async fn codecs_and_urls() {
    assert_eq!(eval("local b = require 'base64' return b.dec(b.enc('hello\\0world'))").await, "hello\0world");
    assert_eq!(eval("return (require 'base64').enc('foobar')").await, "Zm9vYmFy");
    assert_eq!(
        eval("local json = require 'json' local ok, v = json.parse('{\"a\":[1,2,{\"b\":null}]}') return tostring(ok) .. v.a[2] .. tostring(v.a[3].b == json.NULL)").await,
        "true2true"
    );
    assert_eq!(eval("local json = require 'json' local ok, e = json.parse('{bad') return tostring(ok)").await, "false");
    assert_eq!(eval("return (require 'json').generate({1, 2, 'x'})").await, "[1,2,\"x\"]");
    assert_eq!(eval("return (require 'json').generate({a = true})").await, "{\"a\":true}");
    assert!(eval("local ok, e = pcall((require 'json').generate, {string.rep('x', 9000000)}) return tostring(e)")
        .await
        .contains("json: value too large"));
    let url = "local url = require 'url'\n";
    assert_eq!(
        eval(&format!("{url} local u = url.parse('http://user@example.com:8080/a/b?x=1#f') return u.scheme..' '..u.host..' '..u.port..' '..u.path..' '..u.query..' '..u.fragment..' '..u.userinfo")).await,
        "http example.com 8080 /a/b x=1 f user"
    );
    assert_eq!(eval(&format!("{url} return url.escape('a b&c')")).await, "a%20b%26c");
    assert_eq!(eval(&format!("{url} return url.unescape('a%20b')")).await, "a b");
    assert_eq!(eval(&format!("{url} return url.absolute('http://h/a/b', 'c')")).await, "http://h/a/c");
    assert_eq!(eval(&format!("{url} return url.absolute('http://h/a/b', '/d?q')")).await, "http://h/d?q");
}

#[tokio::test]
async fn tab_strbuf_and_new_try() {
    assert_eq!(
        eval("local tab = require 'tab' local t = tab.new() tab.addrow(t, 'PORT', 'STATE') tab.addrow(t, '22', 'open') return tab.dump(t)").await,
        "PORT  STATE\n22    open\n"
    );
    assert_eq!(
        eval("local strbuf = require 'strbuf' local b = strbuf.new('a') b = b .. 'b' .. 'c' return b:dump()").await,
        "abc"
    );
    assert_eq!(
        eval("local nmap = require 'nmap' local try = nmap.new_try() local ok, e = pcall(try, false, 'bad') return e.errtype .. ' ' .. try(true, 'fine')").await,
        "nmap.new_try fine"
    );
    assert_eq!(eval("local nmap = require 'nmap' return nmap.address_family() .. nmap.verbosity()").await, "inet0");
}

#[tokio::test]
async fn socket_receive_variants_against_a_local_daemon() {
    let l = TcpListener::bind((LOCAL, 0)).await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let _ = s.write_all(b"line1\r\nline2\r\nEND;rest").await;
                let mut buf = [0u8; 64];
                if let Ok(n) = s.read(&mut buf).await {
                    let _ = s.write_all(&buf[..n]).await;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            });
        }
    });
    let script = format!(
        r#"
local nmap = require "nmap"
local s = nmap.new_socket()
s:set_timeout(2000)
assert(s:connect("127.0.0.1", {port}))
local ok, lines = s:receive_lines(2)
assert(ok and lines:find("line2"), lines)
local ok2, info_l, lport, rhost, rport = s:get_info()
assert(ok2 and rhost == "127.0.0.1" and rport == {port})
assert(s:send("ping"))
local ok3, echo = s:receive_bytes(4)
assert(ok3 and echo:find("ping"), echo)
s:set_timeout(100)
local ok4, err = s:receive()
s:close()
local closed_ok, closed_err = s:send("x")
local refused = nmap.new_socket()
local rok, rerr = refused:connect({{ip = "127.0.0.1"}}, {{number = 1, protocol = "tcp"}})
return tostring(ok4) .. " " .. tostring(err) .. " " .. tostring(closed_ok) .. " " .. tostring(rok) .. " " .. tostring(rerr)
"#
    );
    assert_eq!(eval(&script).await, "false TIMEOUT false false ERROR: connection refused");
}

#[tokio::test]
async fn receive_buf_splits_at_a_delimiter() {
    let l = TcpListener::bind((LOCAL, 0)).await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        if let Ok((mut s, _)) = l.accept().await {
            let _ = s.write_all(b"220 hello\r\n250 next\r\n251 unix\n252 fn;tail").await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let script = format!(
        "local s = (require 'nmap').new_socket() s:connect('127.0.0.1', {port})\nlocal _, a = s:receive_buf('\\r\\n', false) local _, b = s:receive_buf('\\r\\n', true)\nlocal _, c = s:receive_buf('\\r?\\n', false) local _, d = s:receive_buf(function(buf) return buf:find(';', 1, true) end, false)\nlocal _, e = s:receive_buf('\\n', false)\nreturn a .. '|' .. b .. '|' .. c .. '|' .. d .. '|' .. e"
    );
    assert_eq!(eval(&script).await, "220 hello|250 next\r\n|251 unix|252 fn|tail");
}

#[tokio::test]
async fn ipops_and_comm() {
    let ip = "local ipOps = require 'ipOps'\nreturn ";
    assert_eq!(
        eval(&format!("{ip} tostring(ipOps.isPrivate('10.1.1.1')) .. tostring(ipOps.isPrivate('8.8.8.8'))")).await,
        "truefalse"
    );
    assert_eq!(eval(&format!("{ip} ipOps.str_to_ip(ipOps.ip_to_str('192.0.2.7'))")).await, "192.0.2.7");
    assert_eq!(eval(&format!("{ip} tostring(ipOps.compare_ip('10.0.0.1', 'lt', '10.0.0.2'))")).await, "true");
    assert_eq!(eval(&format!("{ip} ipOps.expand_ip('2001:db8::1')")).await, "2001:0db8:0000:0000:0000:0000:0000:0001");
    assert_eq!(eval(&format!("{ip} tostring(ipOps.ip_in_range('10.0.0.5', '10.0.0.0/24'))")).await, "true");
    assert_eq!(eval(&format!("{ip} select(2, ipOps.isPrivate('nope'))")).await, "invalid address");

    let l = TcpListener::bind((LOCAL, 0)).await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 64];
                if let Ok(n) = s.read(&mut buf).await {
                    let _ = s.write_all(&[b"echo:", &buf[..n]].concat()).await;
                }
            });
        }
    });
    let script = format!(
        "local comm = require 'comm'\nlocal ok, r = comm.exchange({{ip='127.0.0.1'}}, {{number={port}, protocol='tcp'}}, 'hi', {{timeout=2000}})\nreturn tostring(ok) .. ' ' .. r"
    );
    assert_eq!(eval(&script).await, "true echo:hi");
}
