//! A minimal JSON value parser for tests (no serde_json dev-dependency is available).
//! Strict enough to reject what the report must never print: trailing commas, raw control
//! characters in strings, unknown escapes, trailing garbage.

#![allow(dead_code)]

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// The number's text, as printed (so integers are compared exactly).
    Num(String),
    Str(String),
    Arr(Vec<Value>),
    Obj(Vec<(String, Value)>),
}

impl Value {
    /// Follows a dotted path; numeric parts index arrays: "sockets.0.owners.1.pid".
    pub fn at(&self, path: &str) -> &Value {
        let mut v = self;
        for part in path.split('.').filter(|p| !p.is_empty()) {
            v = match v {
                Value::Obj(kv) => kv
                    .iter()
                    .find(|(k, _)| k == part)
                    .map(|(_, v)| v)
                    .unwrap_or_else(|| panic!("no key {part:?} in path {path:?}")),
                Value::Arr(a) => {
                    let i: usize = part.parse().unwrap_or_else(|_| panic!("bad index {part}"));
                    a.get(i)
                        .unwrap_or_else(|| panic!("index {i} out of range in {path:?}"))
                }
                other => panic!("cannot descend into {other:?} at {part:?} of {path:?}"),
            };
        }
        v
    }
    pub fn has(&self, key: &str) -> bool {
        matches!(self, Value::Obj(kv) if kv.iter().any(|(k, _)| k == key))
    }
    pub fn i64(&self) -> i64 {
        match self {
            Value::Num(n) => n.parse().unwrap_or_else(|_| panic!("not an integer: {n}")),
            other => panic!("not a number: {other:?}"),
        }
    }
    pub fn f64(&self) -> f64 {
        match self {
            Value::Num(n) => n.parse().unwrap(),
            other => panic!("not a number: {other:?}"),
        }
    }
    pub fn str(&self) -> &str {
        match self {
            Value::Str(s) => s,
            other => panic!("not a string: {other:?}"),
        }
    }
    pub fn arr(&self) -> &[Value] {
        match self {
            Value::Arr(a) => a,
            other => panic!("not an array: {other:?}"),
        }
    }
    pub fn obj(&self) -> &[(String, Value)] {
        match self {
            Value::Obj(o) => o,
            other => panic!("not an object: {other:?}"),
        }
    }
}

pub fn parse(text: &str) -> Result<Value, String> {
    let mut p = Parser {
        b: text.as_bytes(),
        i: 0,
    };
    let v = p.value()?;
    p.ws();
    if p.i != p.b.len() {
        return Err(format!("trailing data at byte {}", p.i));
    }
    Ok(v)
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }
    fn err<T>(&self, what: &str) -> Result<T, String> {
        Err(format!("{what} at byte {}", self.i))
    }
    fn eat(&mut self, lit: &str) -> Result<(), String> {
        if self.b[self.i..].starts_with(lit.as_bytes()) {
            self.i += lit.len();
            Ok(())
        } else {
            self.err(&format!("expected {lit}"))
        }
    }
    fn value(&mut self) -> Result<Value, String> {
        self.ws();
        match self.b.get(self.i) {
            None => self.err("unexpected end"),
            Some(b'n') => self.eat("null").map(|_| Value::Null),
            Some(b't') => self.eat("true").map(|_| Value::Bool(true)),
            Some(b'f') => self.eat("false").map(|_| Value::Bool(false)),
            Some(b'"') => self.string().map(Value::Str),
            Some(b'[') => {
                self.i += 1;
                let mut a = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Value::Arr(a));
                }
                loop {
                    a.push(self.value()?);
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Value::Arr(a));
                        }
                        _ => return self.err("expected , or ]"),
                    }
                }
            }
            Some(b'{') => {
                self.i += 1;
                let mut o = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Value::Obj(o));
                }
                loop {
                    self.ws();
                    if self.b.get(self.i) != Some(&b'"') {
                        return self.err("expected key");
                    }
                    let k = self.string()?;
                    if o.iter().any(|(x, _)| *x == k) {
                        return self.err(&format!("duplicate key {k:?}"));
                    }
                    self.ws();
                    self.eat(":")?;
                    let v = self.value()?;
                    o.push((k, v));
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Value::Obj(o));
                        }
                        _ => return self.err("expected , or }"),
                    }
                }
            }
            Some(c) if *c == b'-' || c.is_ascii_digit() => {
                let s = self.i;
                self.i += 1;
                while self.i < self.b.len()
                    && matches!(
                        self.b[self.i],
                        b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-'
                    )
                {
                    self.i += 1;
                }
                let t = std::str::from_utf8(&self.b[s..self.i]).unwrap().to_string();
                if t.parse::<f64>().is_err() {
                    return self.err("bad number");
                }
                Ok(Value::Num(t))
            }
            Some(_) => self.err("unexpected character"),
        }
    }
    fn hex4(&mut self) -> Result<u32, String> {
        let h = self.b.get(self.i..self.i + 4).ok_or("short \\u")?;
        let v = u32::from_str_radix(std::str::from_utf8(h).map_err(|e| e.to_string())?, 16)
            .map_err(|e| e.to_string())?;
        self.i += 4;
        Ok(v)
    }
    fn string(&mut self) -> Result<String, String> {
        self.i += 1; // opening quote
        let mut out = String::new();
        loop {
            let Some(&c) = self.b.get(self.i) else {
                return self.err("unterminated string");
            };
            self.i += 1;
            match c {
                b'"' => return Ok(out),
                b'\\' => {
                    let Some(&e) = self.b.get(self.i) else {
                        return self.err("unterminated escape");
                    };
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let mut cp = self.hex4()?;
                            if (0xD800..0xDC00).contains(&cp) {
                                self.eat("\\u")?;
                                let lo = self.hex4()?;
                                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                            }
                            out.push(char::from_u32(cp).ok_or("bad code point")?);
                        }
                        _ => return self.err("unknown escape"),
                    }
                }
                0..=0x1f => return self.err("raw control character in string"),
                _ => {
                    // Copy one whole UTF-8 sequence.
                    let s = self.i - 1;
                    let len = match c {
                        0xF0.. => 4,
                        0xE0.. => 3,
                        0xC0.. => 2,
                        _ => 1,
                    };
                    let chunk = self.b.get(s..s + len).ok_or("short UTF-8")?;
                    out.push_str(std::str::from_utf8(chunk).map_err(|e| e.to_string())?);
                    self.i = s + len;
                }
            }
        }
    }
}

#[test]
fn parser_accepts_and_rejects() {
    let v = parse(r#"{"a":[1,-2.5,{"b":"x\u001by\"\ud83d\ude00"}],"c":null,"d":true}"#).unwrap();
    assert_eq!(v.at("a.0").i64(), 1);
    assert_eq!(v.at("a.1").f64(), -2.5);
    assert_eq!(v.at("a.2.b").str(), "x\u{1b}y\"😀");
    for bad in [
        r#"{"a":1,}"#,
        r#"[1 2]"#,
        "\"a\u{1}\"",
        r#"{"a":1}x"#,
        r#"{"a":1,"a":2}"#,
    ] {
        assert!(parse(bad).is_err(), "{bad}");
    }
}

/// The contract shape every report must have, whatever the box.
pub fn check_contract(v: &Value) {
    let g = v.at("ghost");
    let total = g.at("mem_total_kb").i64();
    assert_eq!(
        g.at("ghost_kb").i64(),
        total - g.at("accounted_kb").i64(),
        "ghost = total - accounted"
    );
    let sum: i64 = g.at("terms").obj().iter().map(|(_, kb)| kb.i64()).sum();
    assert_eq!(sum, g.at("accounted_kb").i64(), "terms add up to accounted");
    assert!(["meminfo", "vmallocinfo"].contains(&g.at("vmalloc_source").str()));
    let socks = v.at("sockets").arr();
    // PRODUCT.md's names, including the Additions' "unix".
    let protos = [
        "tcp", "tcp6", "udp", "udp6", "raw", "raw6", "udplite", "udplite6", "netlink", "packet",
        "unix",
    ];
    let mut last = i64::MAX;
    for s in socks {
        for k in [
            "proto",
            "local",
            "rx_queue",
            "tx_queue",
            "drops",
            "inode",
            "uid",
            "owners",
            "owners_more",
            "netns",
        ] {
            assert!(s.has(k), "socket lacks {k}: {s:?}");
        }
        assert!(protos.contains(&s.at("proto").str()), "proto name: {s:?}");
        assert!(s.at("owners_more").i64() >= 0, "owners_more: {s:?}");
        assert!(s.at("netns").i64() >= 0, "netns: {s:?}");
        let rx = s.at("rx_queue").i64();
        assert!(rx <= last, "sockets sorted by rx_queue descending");
        last = rx;
        let pids: Vec<i64> = s
            .at("owners")
            .arr()
            .iter()
            .map(|o| o.at("pid").i64())
            .collect();
        let mut sorted = pids.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(pids, sorted, "owners by pid, each once");
    }
    assert!(v.at("processes.rss_total_kb").i64() >= 0);
    assert!(v.at("processes.count").i64() >= 0);
    assert!(!v.at("verdict").str().is_empty());
    v.at("skipped").arr();
}
