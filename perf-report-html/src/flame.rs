//! Embedding a flamegraph SVG (with its own zoom/search script) in the page.
//!
//! The SVG goes into a sandboxed `<iframe>` as a `data:image/svg+xml;base64,…` URL: the
//! browser parses it as the XML document it is, so inferno's script finds its own
//! elements (`document.getElementsByTagName("svg")[0]`, ids) and runs, while the sandbox
//! (`allow-scripts allow-modals`, no `allow-same-origin`) keeps it away from the report page.
//! One thing inferno's script does fails in a `data:` document: `history.replaceState` (it
//! records the zoom and search in the URL) throws, which would stop a search half-way. A
//! tiny script placed before inferno's makes those calls harmless.

/// Script inserted at the start of the SVG: makes `history.replaceState`/`pushState`
/// failures (always, in a `data:` document) harmless.
const HISTORY_SHIM: &str = "<script type=\"text/ecmascript\"><![CDATA[(function(){try{var h=window.history;['replaceState','pushState'].forEach(function(k){var f=h[k];h[k]=function(){try{return f.apply(h,arguments);}catch(e){}};});}catch(e){}})();]]></script>";

/// Default frame height when the SVG does not say.
const DEFAULT_HEIGHT: u32 = 480;

/// Standard base64 (RFC 4648, with padding).
pub(crate) fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextet = |shift: u32| char::from(ALPHABET[((n >> shift) & 63) as usize]);
        out.push(sextet(18));
        out.push(sextet(12));
        out.push(if chunk.len() > 1 { sextet(6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(0) } else { '=' });
    }
    out
}

/// Byte range of the root `<svg …>` start tag, if any (quotes are honoured, so a `>` inside
/// an attribute value does not end the tag).
fn root_tag(svg: &str) -> Option<(usize, usize)> {
    let bytes = svg.as_bytes();
    let start = svg
        .as_bytes()
        .windows(4)
        .position(|w| w.eq_ignore_ascii_case(b"<svg"))?;
    // `<svg` must be followed by whitespace, `>` or `/` to be the element.
    match bytes.get(start + 4) {
        Some(b' ' | b'\t' | b'\n' | b'\r' | b'>' | b'/') => {}
        _ => return None,
    }
    let mut quote: Option<u8> = None;
    for (i, &c) in bytes.iter().enumerate().skip(start + 4) {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, b'"' | b'\'') => quote = Some(c),
            (None, b'>') => return Some((start, i + 1)),
            _ => {}
        }
    }
    None
}

/// The `height` attribute of the root element, in pixels, when it is a plain number.
fn root_height(tag: &str) -> Option<u32> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(pos) = lower[from..].find("height") {
        let at = from + pos;
        from = at + 6;
        // Must be the attribute name `height`, not `image-height` or `data-height`.
        let before = lower[..at].chars().next_back();
        if !matches!(before, Some(' ' | '\t' | '\n' | '\r')) {
            continue;
        }
        let rest = lower[at + 6..].trim_start();
        let Some(rest) = rest.strip_prefix('=') else {
            continue;
        };
        let rest = rest.trim_start();
        let rest = rest.strip_prefix(['"', '\'']).unwrap_or(rest);
        let digits: String = rest
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        let after = rest[digits.len()..].chars().next();
        if !matches!(after, None | Some('"' | '\'' | 'p' | ' ')) {
            return None; // a percentage or another unit
        }
        return digits.parse::<f64>().ok().map(|h| h.ceil() as u32);
    }
    None
}

/// What to embed: the `data:` URL and the frame height, or why the SVG cannot be used.
pub(crate) fn embed(svg: &str) -> Result<(String, u32), String> {
    // XML (which the frame parses the SVG as) cannot carry U+0000 and most other control
    // characters at all: a single one would stop the flamegraph from showing.
    let svg = crate::sanitize::visible(svg);
    let svg = svg.as_ref();
    let Some((start, end)) = root_tag(svg) else {
        return Err(format!(
            "the flamegraph renderer returned no SVG document ({} bytes without an <svg> element)",
            svg.len()
        ));
    };
    let height = root_height(&svg[start..end])
        .unwrap_or(DEFAULT_HEIGHT)
        .clamp(120, 20_000)
        + 4;
    let self_closing = svg[..end].ends_with("/>");
    let mut doc = String::with_capacity(svg.len() + HISTORY_SHIM.len());
    doc.push_str(&svg[..end]);
    if !self_closing {
        doc.push_str(HISTORY_SHIM);
    }
    doc.push_str(&svg[end..]);
    Ok((
        format!("data:image/svg+xml;base64,{}", base64(doc.as_bytes())),
        height,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
        assert_eq!(base64(b"fooba"), "Zm9vYmE=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xff, 0xfe, 0xfd]), "//79");
    }

    #[test]
    fn finds_the_root_tag_and_its_height() {
        let svg = r#"<?xml version="1.0"?><!DOCTYPE svg PUBLIC "x"><svg version="1.1" width="1200" height="342" onload="init(evt)" data-x="a>b"><rect/></svg>"#;
        let (s, e) = root_tag(svg).unwrap();
        assert!(svg[s..e].ends_with(r#"data-x="a>b">"#), "{}", &svg[s..e]);
        assert_eq!(root_height(&svg[s..e]), Some(342));
        assert_eq!(root_height(r#"<svg width="10" height="50%">"#), None);
        assert_eq!(
            root_height(r#"<svg data-height="3" height='12.5px'>"#),
            Some(13)
        );
        assert_eq!(root_tag("<svgx>"), None);
        assert_eq!(root_tag("<svg width='1'"), None, "unterminated tag");
    }

    #[test]
    fn embed_inserts_the_shim_after_the_root_tag() {
        let (url, h) =
            embed(r#"<svg xmlns="http://www.w3.org/2000/svg" height="200"><g/></svg>"#).unwrap();
        assert_eq!(h, 204);
        let b64 = url.strip_prefix("data:image/svg+xml;base64,").unwrap();
        assert_eq!(b64, base64(format!(r#"<svg xmlns="http://www.w3.org/2000/svg" height="200">{HISTORY_SHIM}<g/></svg>"#).as_bytes()));
        assert!(embed("not an svg").unwrap_err().contains("no SVG"));
        let (_, h) = embed("<svg/>").unwrap();
        assert_eq!(h, DEFAULT_HEIGHT + 4);
    }
}
