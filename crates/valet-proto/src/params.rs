//! Form parameters as they arrive (query string, urlencoded or multipart body), merged.

/// Parameters in arrival order. Repeated names are kept so that a repeated parameter can be
/// refused (RFC 6749 §3.1: "parameters MUST NOT be included more than once").
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

/// A parameter that appeared more than once with different values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repeated(pub String);

impl Params {
    pub fn new() -> Self {
        Params(Vec::new())
    }

    /// Parses `application/x-www-form-urlencoded` text; bad percent-escapes are decoded lossily
    /// rather than refused, as form decoders do.
    pub fn from_urlencoded(s: &[u8]) -> Self {
        let pairs: Vec<(String, String)> = form_pairs(s);
        Params(pairs)
    }

    pub fn push(&mut self, k: impl Into<String>, v: impl Into<String>) {
        self.0.push((k.into(), v.into()));
    }

    /// Appends every parameter of `other` (body after query: both are kept).
    pub fn extend(&mut self, other: Params) {
        self.0.extend(other.0);
    }

    /// The single value of `name`. Empty values count as absent. A name repeated with
    /// different values is an error; the same value twice is tolerated.
    pub fn get(&self, name: &str) -> Result<Option<&str>, Repeated> {
        let mut found: Option<&str> = None;
        for (k, v) in &self.0 {
            if k == name && !v.is_empty() {
                match found {
                    Some(prev) if prev != v => return Err(Repeated(name.to_string())),
                    _ => found = Some(v.as_str()),
                }
            }
        }
        Ok(found)
    }

    /// Like [`Params::get`], treating a repeated parameter as absent-with-error collapsed to None.
    pub fn get_lenient(&self, name: &str) -> Option<&str> {
        self.get(name).ok().flatten()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|(k, v)| k == name && !v.is_empty())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Serialises back to urlencoded form (for carrying an authorize request through a page).
    pub fn to_urlencoded(&self) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.0 {
            out.append_pair(k, v);
        }
        out.finish()
    }

    /// A copy without the named parameters.
    pub fn without(&self, names: &[&str]) -> Params {
        Params(self.0.iter().filter(|(k, _)| !names.contains(&k.as_str())).cloned().collect())
    }
}

fn form_pairs(s: &[u8]) -> Vec<(String, String)> {
    s.split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let mut it = pair.splitn(2, |b| *b == b'=');
            let k = it.next().unwrap_or_default();
            let v = it.next().unwrap_or_default();
            (decode(k), decode(v))
        })
        .collect()
}

/// Decodes one `application/x-www-form-urlencoded` value (`+` is a space, `%XX` a byte; a
/// malformed escape stays as it is; bytes that are not UTF-8 become U+FFFD).
pub fn form_decode(s: &str) -> String {
    decode(s.as_bytes())
}

fn decode(s: &[u8]) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < s.len() => match (hex(s[i + 1]), hex(s[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h * 16 + l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    // Valid UTF-8 (nearly always) keeps its buffer: one allocation per decoded string.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn decodes_forms() {
        let p = Params::from_urlencoded(b"a=1&b=x%3D%3D&c=a+b&d=%zz&e=%4");
        assert_eq!(p.get("a").unwrap(), Some("1"));
        assert_eq!(p.get("b").unwrap(), Some("x=="));
        assert_eq!(p.get("c").unwrap(), Some("a b"));
        assert_eq!(p.get("d").unwrap(), Some("%zz"));
        assert_eq!(p.get("e").unwrap(), Some("%4"));
        assert_eq!(p.get("zz").unwrap(), None);
        // Bytes that are not UTF-8 become U+FFFD, the rest is kept.
        let p = Params::from_urlencoded(b"f=a%FFb&g=%C3%A9");
        assert_eq!(p.get("f").unwrap(), Some("a\u{FFFD}b"));
        assert_eq!(p.get("g").unwrap(), Some("é"));
    }

    #[test]
    fn refuses_conflicting_repeats() {
        let p = Params::from_urlencoded(b"a=1&a=2&b=1&b=1&c=&c=3");
        assert_eq!(p.get("a"), Err(Repeated("a".into())));
        assert_eq!(p.get("b").unwrap(), Some("1"));
        assert_eq!(p.get("c").unwrap(), Some("3"));
    }
}
