//! The `--proxy` URL parser (`socks5://[user:pass@]host:port`, `socks5h://`): any text parses or
//! fails with a typed error; what parses prints back to a URL that parses to the same value, and
//! the password never shows in `Display` or `Debug`.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rustmap_proxy::{Credentials, ProxyUrl};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(url) = ProxyUrl::parse(text) {
        let _ = (url.scheme(), url.endpoint());
        let shown = format!("{url} {url:?}");
        // The same URL with another password must show the same.
        if let Some(c) = &url.credentials {
            let mut other = url.clone();
            other.credentials = Some(Credentials::new(c.user(), "x").expect("a one-letter password"));
            assert_eq!(shown, format!("{other} {other:?}"), "the password shows");
        } else {
            assert_eq!(ProxyUrl::parse(&url.to_string()).as_ref(), Ok(&url), "{text:?} -> {url}");
        }
    }
});
