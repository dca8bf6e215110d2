//! A step-counted rehearsal of Lua 5.4's pattern matching, so that a costly pattern is refused
//! before the real `string.find/match/gmatch/gsub` run it in C, where the instruction hook
//! cannot interrupt them (`.-.-.-.-b` over a long subject backtracks for hours).
//!
//! The rehearsal follows the matching algorithm of Lua's reference manual §6.4.1 (single-char
//! classes, sets, `*` `+` `-` `?`, anchors, captures and back-references, `%b`, `%f`) and the
//! scanning loops of the four functions, counting one step per character test. It only
//! decides *whether the call is affordable*; the real call still produces the result, so a
//! difference in some corner of the semantics can cost accuracy of the estimate, never
//! correctness. A malformed pattern is left to Lua, which raises its usual error.

/// Character tests one call may make.
pub const STEP_LIMIT: u64 = 20_000_000;

/// Which function is about to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `string.find` or `string.match`: first match from `init`.
    Find,
    /// `string.gmatch`: every match.
    Gmatch,
    /// `string.gsub`: up to `max` matches.
    Gsub,
}

/// The rehearsal exceeded [`STEP_LIMIT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooCostly;

const MAX_CAPTURES: usize = 32;
const MAX_DEPTH: u32 = 200;
const CAP_UNFINISHED: isize = -1;
const CAP_POSITION: isize = -2;

/// Not a cost problem: the pattern is malformed (Lua will say so) or too deep.
struct Malformed;

enum Stop {
    Costly,
    Malformed,
}

struct State<'a> {
    src: &'a [u8],
    pat: &'a [u8],
    level: usize,
    capture: [(usize, isize); MAX_CAPTURES],
    depth: u32,
    steps: u64,
}

/// Rehearses `kind` of `pattern` over `subject` from 1-based `init` (Lua's convention,
/// negative from the end), with at most `max` substitutions for gsub. Returns the steps taken,
/// which the sandbox charges to the instruction budget (the real call will take as many).
pub fn check(subject: &[u8], pattern: &[u8], init: i64, kind: Kind, max: Option<i64>) -> Result<u64, TooCostly> {
    let mut st =
        State { src: subject, pat: pattern, level: 0, capture: [(0, 0); MAX_CAPTURES], depth: MAX_DEPTH, steps: 0 };
    match st.scan(init, kind, max) {
        Ok(()) | Err(Stop::Malformed) => Ok(st.steps),
        Err(Stop::Costly) => Err(TooCostly),
    }
}

/// The first match as `string.find` reports it (1-based start and end), by the rehearsal's
/// own matcher: lets tests compare its semantics with Lua's.
pub fn rehearse_find(subject: &[u8], pattern: &[u8]) -> Option<Option<(usize, usize)>> {
    let mut st =
        State { src: subject, pat: pattern, level: 0, capture: [(0, 0); MAX_CAPTURES], depth: MAX_DEPTH, steps: 0 };
    let anchor = pattern.first() == Some(&b'^');
    let mut s = 0;
    loop {
        st.level = 0;
        st.depth = MAX_DEPTH;
        match st.do_match(s, usize::from(anchor)) {
            Err(_) => return None,
            Ok(Some(e)) => return Some(Some((s + 1, e))),
            Ok(None) if anchor || s >= subject.len() => return Some(None),
            Ok(None) => s += 1,
        }
    }
}

impl State<'_> {
    fn scan(&mut self, init: i64, kind: Kind, max: Option<i64>) -> Result<(), Stop> {
        let len = self.src.len() as i64;
        let start = match init {
            i if i > 0 => i - 1,
            0 => 0,
            i if -i > len => 0,
            i => len + i,
        };
        if start > len {
            return Ok(());
        }
        let mut s = start as usize;
        let anchor = kind != Kind::Gmatch && self.pat.first() == Some(&b'^');
        let p0 = usize::from(anchor);
        let mut last: Option<usize> = None;
        let mut count = 0i64;
        loop {
            self.level = 0;
            self.depth = MAX_DEPTH;
            let e = self.do_match(s, p0)?;
            match kind {
                Kind::Find => {
                    if e.is_some() || anchor || s >= self.src.len() {
                        return Ok(());
                    }
                    s += 1;
                }
                Kind::Gmatch | Kind::Gsub => {
                    match e {
                        Some(e) if Some(e) != last => {
                            count += 1;
                            s = e;
                            last = Some(e);
                            if max.is_some_and(|m| count >= m) {
                                return Ok(());
                            }
                        }
                        _ if s < self.src.len() => s += 1,
                        _ => return Ok(()),
                    }
                    if anchor || s > self.src.len() {
                        return Ok(());
                    }
                }
            }
        }
    }

    fn step(&mut self) -> Result<(), Stop> {
        self.steps += 1;
        if self.steps > STEP_LIMIT {
            return Err(Stop::Costly);
        }
        Ok(())
    }

    fn class_end(&self, mut p: usize) -> Result<usize, Malformed> {
        let c = *self.pat.get(p).ok_or(Malformed)?;
        p += 1;
        match c {
            b'%' => {
                if p >= self.pat.len() {
                    return Err(Malformed);
                }
                Ok(p + 1)
            }
            b'[' => {
                if self.pat.get(p) == Some(&b'^') {
                    p += 1;
                }
                loop {
                    let c = *self.pat.get(p).ok_or(Malformed)?;
                    p += 1;
                    if c == b'%' {
                        if p >= self.pat.len() {
                            return Err(Malformed);
                        }
                        p += 1;
                    }
                    if self.pat.get(p) == Some(&b']') {
                        return Ok(p + 1);
                    }
                    if p >= self.pat.len() {
                        return Err(Malformed);
                    }
                }
            }
            _ => Ok(p),
        }
    }

    fn single(&mut self, s: usize, p: usize, ep: usize) -> Result<bool, Stop> {
        self.step()?;
        let Some(&c) = self.src.get(s) else { return Ok(false) };
        Ok(match self.pat[p] {
            b'.' => true,
            b'%' => class(c, self.pat[p + 1]),
            b'[' => self.bracket(c, p, ep - 1),
            pc => pc == c,
        })
    }

    fn bracket(&self, c: u8, mut p: usize, ec: usize) -> bool {
        let mut sig = true;
        if self.pat.get(p + 1) == Some(&b'^') {
            sig = false;
            p += 1;
        }
        p += 1;
        while p < ec {
            if self.pat[p] == b'%' {
                p += 1;
                if p < self.pat.len() && class(c, self.pat[p]) {
                    return sig;
                }
            } else if self.pat.get(p + 1) == Some(&b'-') && p + 2 < ec {
                if self.pat[p] <= c && c <= self.pat[p + 2] {
                    return sig;
                }
                p += 2;
            } else if self.pat[p] == c {
                return sig;
            }
            p += 1;
        }
        !sig
    }

    fn do_match(&mut self, s: usize, p: usize) -> Result<Option<usize>, Stop> {
        if self.depth == 0 {
            return Err(Stop::Malformed);
        }
        self.depth -= 1;
        let r = self.match_inner(s, p);
        self.depth += 1;
        r
    }

    fn match_inner(&mut self, mut s: usize, mut p: usize) -> Result<Option<usize>, Stop> {
        let malformed = |_: Malformed| Stop::Malformed;
        loop {
            if p >= self.pat.len() {
                return Ok(Some(s));
            }
            match self.pat[p] {
                b'(' => {
                    return if self.pat.get(p + 1) == Some(&b')') {
                        self.start_capture(s, p + 2, CAP_POSITION)
                    } else {
                        self.start_capture(s, p + 1, CAP_UNFINISHED)
                    };
                }
                b')' => return self.end_capture(s, p + 1),
                b'$' if p + 1 == self.pat.len() => {
                    return Ok((s == self.src.len()).then_some(s));
                }
                b'%' if self.pat.get(p + 1) == Some(&b'b') => {
                    let (Some(&open), Some(&close)) = (self.pat.get(p + 2), self.pat.get(p + 3)) else {
                        return Err(Stop::Malformed);
                    };
                    match self.balance(s, open, close)? {
                        Some(e) => {
                            s = e;
                            p += 4;
                            continue;
                        }
                        None => return Ok(None),
                    }
                }
                b'%' if self.pat.get(p + 1) == Some(&b'f') => {
                    p += 2;
                    if self.pat.get(p) != Some(&b'[') {
                        return Err(Stop::Malformed);
                    }
                    let ep = self.class_end(p).map_err(malformed)?;
                    let prev = if s == 0 { 0 } else { self.src[s - 1] };
                    let cur = self.src.get(s).copied().unwrap_or(0);
                    self.step()?;
                    if !self.bracket(prev, p, ep - 1) && self.bracket(cur, p, ep - 1) {
                        p = ep;
                        continue;
                    }
                    return Ok(None);
                }
                b'%' if self.pat.get(p + 1).is_some_and(u8::is_ascii_digit) => {
                    let Some(l) = self.pat[p + 1].checked_sub(b'1').map(usize::from) else {
                        return Err(Stop::Malformed);
                    };
                    if l >= self.level || self.capture[l].1 == CAP_UNFINISHED {
                        return Err(Stop::Malformed);
                    }
                    let (start, len) = self.capture[l];
                    // A position capture has no text: Lua's comparison then never succeeds.
                    if len == CAP_POSITION {
                        return Ok(None);
                    }
                    let len = len.max(0) as usize;
                    self.steps += len as u64;
                    self.step()?;
                    if self.src.len() - s >= len && self.src[start..start + len] == self.src[s..s + len] {
                        s += len;
                        p += 2;
                        continue;
                    }
                    return Ok(None);
                }
                _ => {
                    let ep = self.class_end(p).map_err(malformed)?;
                    let quant = self.pat.get(ep).copied();
                    if !self.single(s, p, ep)? {
                        if matches!(quant, Some(b'*' | b'?' | b'-')) {
                            p = ep + 1;
                            continue;
                        }
                        return Ok(None);
                    }
                    match quant {
                        Some(b'?') => {
                            if let Some(r) = self.do_match(s + 1, ep + 1)? {
                                return Ok(Some(r));
                            }
                            p = ep + 1;
                        }
                        Some(b'+') => return self.max_expand(s + 1, p, ep),
                        Some(b'*') => return self.max_expand(s, p, ep),
                        Some(b'-') => return self.min_expand(s, p, ep),
                        _ => {
                            s += 1;
                            p = ep;
                        }
                    }
                }
            }
        }
    }

    fn max_expand(&mut self, s: usize, p: usize, ep: usize) -> Result<Option<usize>, Stop> {
        let mut i = 0;
        while self.single(s + i, p, ep)? {
            i += 1;
        }
        loop {
            if let Some(r) = self.do_match(s + i, ep + 1)? {
                return Ok(Some(r));
            }
            if i == 0 {
                return Ok(None);
            }
            i -= 1;
        }
    }

    fn min_expand(&mut self, mut s: usize, p: usize, ep: usize) -> Result<Option<usize>, Stop> {
        loop {
            if let Some(r) = self.do_match(s, ep + 1)? {
                return Ok(Some(r));
            }
            if self.single(s, p, ep)? {
                s += 1;
            } else {
                return Ok(None);
            }
        }
    }

    fn start_capture(&mut self, s: usize, p: usize, what: isize) -> Result<Option<usize>, Stop> {
        if self.level >= MAX_CAPTURES {
            return Err(Stop::Malformed);
        }
        self.capture[self.level] = (s, what);
        self.level += 1;
        let r = self.do_match(s, p)?;
        if r.is_none() {
            self.level -= 1;
        }
        Ok(r)
    }

    fn end_capture(&mut self, s: usize, p: usize) -> Result<Option<usize>, Stop> {
        let Some(l) = (0..self.level).rev().find(|&l| self.capture[l].1 == CAP_UNFINISHED) else {
            return Err(Stop::Malformed);
        };
        self.capture[l].1 = (s - self.capture[l].0) as isize;
        let r = self.do_match(s, p)?;
        if r.is_none() {
            self.capture[l].1 = CAP_UNFINISHED;
        }
        Ok(r)
    }

    fn balance(&mut self, mut s: usize, open: u8, close: u8) -> Result<Option<usize>, Stop> {
        self.step()?;
        if self.src.get(s) != Some(&open) {
            return Ok(None);
        }
        let mut depth = 1;
        s += 1;
        while s < self.src.len() {
            self.step()?;
            let c = self.src[s];
            if c == close {
                depth -= 1;
                if depth == 0 {
                    return Ok(Some(s + 1));
                }
            } else if c == open {
                depth += 1;
            }
            s += 1;
        }
        Ok(None)
    }
}

/// Lua's `%a`-style classes (C locale); an upper-case letter negates.
fn class(c: u8, cl: u8) -> bool {
    let res = match cl.to_ascii_lowercase() {
        b'a' => c.is_ascii_alphabetic(),
        b'c' => c.is_ascii_control(),
        b'd' => c.is_ascii_digit(),
        b'g' => c.is_ascii_graphic(),
        b'l' => c.is_ascii_lowercase(),
        b'p' => c.is_ascii_punctuation(),
        b's' => matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c),
        b'u' => c.is_ascii_uppercase(),
        b'w' => c.is_ascii_alphanumeric(),
        b'x' => c.is_ascii_hexdigit(),
        _ => return cl == c,
    };
    if cl.is_ascii_uppercase() {
        !res
    } else {
        res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &[u8], p: &str) -> bool {
        check(s, p.as_bytes(), 1, Kind::Find, None).is_ok()
    }

    #[test]
    fn bombs_are_too_costly() {
        let a = vec![b'a'; 20_000];
        assert!(!ok(&a, ".-.-.-.-.-.-.-b"));
        assert!(!ok(&a, "a-b"), "one quantifier, unanchored, no match: quadratic");
        assert!(check(&a, b"(.-)(.-)x", 1, Kind::Gmatch, None).is_err());
    }

    #[test]
    fn ordinary_patterns_on_large_subjects_pass() {
        let mut page = vec![b'x'; 2_000_000];
        page.extend_from_slice(b"<title>Hello</title>");
        assert!(ok(&page, "<title>(.-)</title>"));
        assert!(ok(&page, "^%s*(.-)%s*$"));
        assert!(ok(b"  padded  ", "^%s*(.-)%s*$"));
        assert!(check(&page, b"%w+", 1, Kind::Gsub, None).is_ok());
        assert!(ok(b"f(a(b)c)", "%b()"));
        assert!(ok(b"THE (quick) fox", "%f[%a]%a+"));
        assert!(ok(b"hello hello", "(h%a+) %1"));
    }

    /// The rehearsal and Lua agree on where the first match is, over generated subjects and
    /// patterns: the rehearsal's cost is the real call's cost only if it walks the same path.
    #[test]
    fn rehearsal_agrees_with_lua() {
        let lua = mlua::Lua::new();
        let find: mlua::Function = lua.load("return function(s, p) return string.find(s, p) end").eval().unwrap();
        let subjects: &[&[u8]] =
            &[b"", b"a", b"aaab", b"hello world", b"(a(b)c)d", b"x1y22z333", b"THE (quick) fox", b"ab\r\ncd"];
        let atoms = [
            "a", ".", "%a", "%d", "[ab]", "[^a]", "%s", "b", "%w", "[%a%d]", "x", "%)", "[a-c]", "%b()", "%f[%a]",
            "%1", "()",
        ];
        let quants = ["", "*", "+", "-", "?"];
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        let mut checked = 0;
        for _ in 0..12000 {
            let mut p = String::new();
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if x.is_multiple_of(5) {
                p.push('^');
            }
            for i in 0..(x % 4 + 1) {
                let k = (x >> (8 * i)) as usize;
                let atom = atoms[k % atoms.len()];
                if k.is_multiple_of(11) {
                    p.push('(');
                }
                p.push_str(atom);
                p.push_str(quants[(k / 7) % quants.len()]);
                if k.is_multiple_of(11) {
                    p.push(')');
                }
            }
            if x.is_multiple_of(7) {
                p.push('$');
            }
            for s in subjects {
                let ours = match rehearse_find(s, p.as_bytes()) {
                    Some(r) => r,
                    None => continue,
                };
                let theirs: Option<(usize, usize)> =
                    match find.call::<(Option<usize>, Option<usize>)>((lua.create_string(s).unwrap(), p.as_str())) {
                        Ok((Some(a), Some(b))) => Some((a, b)),
                        Ok(_) => None,
                        Err(_) => continue,
                    };
                assert_eq!(ours, theirs, "pattern {p:?} on {:?}", String::from_utf8_lossy(s));
                checked += 1;
            }
        }
        assert!(checked > 30_000, "{checked}");
    }

    #[test]
    fn malformed_patterns_are_left_to_lua() {
        for p in ["[a", "%", "(()", "%b", "%f", "%1", "%0", "a)", "[%", "[]"] {
            assert!(ok(b"abc", p), "{p}");
        }
    }
}
