//! Server-sent events for MCP's transports: a reader that cuts a byte stream into events
//! (`event:`, `data:` lines joined by `\n`, `id:`), and the encoding of one event. Pure.

use bytes::Bytes;

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// `event:`; `None` means `message`.
    pub name: Option<String>,
    pub data: String,
    pub id: Option<String>,
}

/// Cuts bytes into events as they arrive.
#[derive(Debug, Default)]
pub struct Reader {
    buf: Vec<u8>,
}

/// Most bytes one event may have before the stream is given up (a broken or hostile server).
pub const MAX_EVENT_BYTES: usize = 16 * 1024 * 1024;

impl Reader {
    /// Adds bytes; returns the events they complete, or `Err` when an event grows past
    /// [`MAX_EVENT_BYTES`].
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Event>, String> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some((end, next)) = boundary(&self.buf) {
            let block: Vec<u8> = self.buf.drain(..next).take(end).collect();
            if let Some(e) = parse(&block) {
                out.push(e);
            }
        }
        if self.buf.len() > MAX_EVENT_BYTES {
            return Err(format!("an event is larger than {MAX_EVENT_BYTES} bytes"));
        }
        Ok(out)
    }
}

/// The end of the first event in `buf` and where the next one starts (a blank line: `\n\n`,
/// `\r\n\r\n` or `\r\r`).
fn boundary(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i < buf.len() {
        for sep in [&b"\r\n\r\n"[..], b"\n\n", b"\r\r"] {
            if buf[i..].starts_with(sep) {
                return Some((i, i + sep.len()));
            }
        }
        i += 1;
    }
    None
}

fn parse(block: &[u8]) -> Option<Event> {
    let text = String::from_utf8_lossy(block);
    let mut e = Event::default();
    let mut data: Vec<&str> = Vec::new();
    for line in text.split(['\n', '\r']).filter(|l| !l.is_empty()) {
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        match field {
            "event" => e.name = Some(value.to_string()),
            "data" => data.push(value),
            "id" => e.id = Some(value.to_string()),
            _ => {}
        }
    }
    if data.is_empty() && e.name.is_none() {
        return None;
    }
    e.data = data.join("\n");
    Some(e)
}

/// One event on the wire (`data` may hold newlines: one `data:` line each).
pub fn encode(name: Option<&str>, data: &str) -> Bytes {
    let mut s = String::with_capacity(data.len() + 32);
    if let Some(n) = name {
        s.push_str("event: ");
        s.push_str(n);
        s.push('\n');
    }
    for line in data.split('\n') {
        s.push_str("data: ");
        s.push_str(line);
        s.push('\n');
    }
    s.push('\n');
    Bytes::from(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_cut_at_blank_lines_whatever_the_chunks() {
        let wire = b"event: endpoint\r\ndata: /messages/?session_id=1\r\n\r\n: ping\n\nevent: message\ndata: {\"a\":\ndata: 1}\n\n";
        let mut r = Reader::default();
        let mut got = Vec::new();
        for chunk in wire.chunks(3) {
            got.extend(r.push(chunk).unwrap());
        }
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].name.as_deref(), Some("endpoint"));
        assert_eq!(got[0].data, "/messages/?session_id=1");
        assert_eq!(got[1].data, "{\"a\":\n1}");
        let mut back = Reader::default();
        let e = back.push(&encode(Some("message"), "x\ny")).unwrap();
        assert_eq!(e[0].data, "x\ny");
    }
}
