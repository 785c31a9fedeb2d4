//! Server-sent events rewritten as they pass: [`SseMap`] cuts a body into events, hands each
//! (`event:` name, `data:`) to an [`SseTransform`] and sends what it returns. Used to turn one
//! provider's stream into another's without waiting for its end.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use serde_json::Value;

use super::anthropic::{ChatChunksFromMessages, MessageEventsFromChat};
use super::gemini::ChatChunksFromGemini;
use crate::usage::event_boundary;
use crate::{Body, BoxError};

/// Turns one stream's events into another's.
pub trait SseTransform: Send + 'static {
    /// One event; returns the bytes to send (complete events, or nothing).
    fn event(&mut self, name: Option<&str>, data: &str) -> Vec<u8>;
    /// The stream ended; returns what is still owed.
    fn finish(&mut self) -> Vec<u8>;
}

/// A body whose SSE events go through `T`.
pub struct SseMap<T> {
    inner: Body,
    buf: BytesMut,
    transform: T,
    done: bool,
}

impl<T: SseTransform> SseMap<T> {
    pub fn new(inner: Body, transform: T) -> Self {
        Self {
            inner,
            buf: BytesMut::new(),
            transform,
            done: false,
        }
    }

    fn drain(&mut self, out: &mut Vec<u8>) {
        while let Some((end, next)) = event_boundary(&self.buf) {
            let event = self.buf.split_to(next);
            let (name, data) = parse(&event[..end]);
            out.extend(self.transform.event(name.as_deref(), &data));
        }
    }
}

/// The `event:` name and the joined `data:` lines of one event.
fn parse(text: &[u8]) -> (Option<String>, String) {
    let text = String::from_utf8_lossy(text);
    let mut name = None;
    let mut data = Vec::new();
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("event:") {
            name = Some(v.trim().to_string());
        } else if let Some(v) = line.strip_prefix("data:") {
            data.push(v.strip_prefix(' ').unwrap_or(v).to_string());
        }
    }
    (name, data.join("\n"))
}

impl<T: SseTransform + Unpin> HttpBody for SseMap<T> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        this.buf.extend_from_slice(&data);
                        let mut out = Vec::new();
                        this.drain(&mut out);
                        if !out.is_empty() {
                            return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                        }
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => {
                    this.done = true;
                    let mut out = Vec::new();
                    // An unterminated last event still counts.
                    if !this.buf.is_empty() {
                        this.buf.extend_from_slice(b"\n\n");
                        this.drain(&mut out);
                    }
                    out.extend(this.transform.finish());
                    if out.is_empty() {
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(Ok(Frame::data(Bytes::from(out)))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}

/// Anthropic Messages events -> OpenAI `chat.completion.chunk` events (ending in `[DONE]`).
#[derive(Debug, Default)]
pub struct ChatFromMessages(pub ChatChunksFromMessages);

impl SseTransform for ChatFromMessages {
    fn event(&mut self, _name: Option<&str>, data: &str) -> Vec<u8> {
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if v["type"] == "error" {
            let e = super::anthropic::error_to_openai(&v);
            out.extend(format!("data: {e}\n\n").into_bytes());
            return out;
        }
        for chunk in self.0.event(&v) {
            out.extend(format!("data: {chunk}\n\n").into_bytes());
        }
        if v["type"] == "message_stop" {
            out.extend(b"data: [DONE]\n\n");
        }
        out
    }

    fn finish(&mut self) -> Vec<u8> {
        Vec::new()
    }
}

/// Gemini `streamGenerateContent?alt=sse` responses -> OpenAI `chat.completion.chunk` events
/// (ending in `[DONE]` when the stream ends).
#[derive(Debug)]
pub struct ChatFromGemini(pub ChatChunksFromGemini);

impl SseTransform for ChatFromGemini {
    fn event(&mut self, _name: Option<&str>, data: &str) -> Vec<u8> {
        let Ok(v) = serde_json::from_str::<Value>(data) else {
            return Vec::new();
        };
        if v.get("error").is_some() {
            let e = super::gemini::error_to_openai(&v);
            return format!("data: {e}\n\n").into_bytes();
        }
        self.0
            .response(&v)
            .into_iter()
            .flat_map(|c| format!("data: {c}\n\n").into_bytes())
            .collect()
    }

    fn finish(&mut self) -> Vec<u8> {
        let mut out: Vec<u8> = self
            .0
            .finish()
            .into_iter()
            .flat_map(|c| format!("data: {c}\n\n").into_bytes())
            .collect();
        out.extend(b"data: [DONE]\n\n");
        out
    }
}

/// OpenAI `chat.completion.chunk` events -> Anthropic Messages events.
#[derive(Debug, Default)]
pub struct MessagesFromChat(pub MessageEventsFromChat);

fn events(list: Vec<(String, Value)>) -> Vec<u8> {
    list.into_iter()
        .flat_map(|(name, data)| format!("event: {name}\ndata: {data}\n\n").into_bytes())
        .collect()
}

impl SseTransform for MessagesFromChat {
    fn event(&mut self, _name: Option<&str>, data: &str) -> Vec<u8> {
        if data.trim() == "[DONE]" {
            return events(self.0.finish());
        }
        match serde_json::from_str::<Value>(data) {
            Ok(v) => events(self.0.chunk(&v)),
            Err(_) => Vec::new(),
        }
    }

    fn finish(&mut self) -> Vec<u8> {
        events(self.0.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    fn body_of(parts: &[&'static str]) -> Body {
        let frames: Vec<Result<Frame<Bytes>, BoxError>> = parts
            .iter()
            .map(|p| Ok(Frame::data(Bytes::from_static(p.as_bytes()))))
            .collect();
        http_body_util::StreamBody::new(futures::stream::iter(frames)).boxed_unsync()
    }

    #[tokio::test]
    async fn events_split_across_frames_are_rewritten_whole() {
        let body = body_of(&[
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":2}}}\n\nevent: content_block_delta\ndata: {\"type\":\"content_",
            "block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        ]);
        let out = SseMap::new(body, ChatFromMessages::default())
            .collect()
            .await
            .unwrap()
            .to_bytes();
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(text.contains("\"content\":\"Hi\""), "{text}");
        assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    }

    #[tokio::test]
    async fn an_openai_stream_without_done_still_closes_the_message() {
        let body = body_of(&[
            "data: {\"id\":\"c\",\"model\":\"t\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n",
        ]);
        let out = SseMap::new(body, MessagesFromChat::default())
            .collect()
            .await
            .unwrap()
            .to_bytes();
        let text = String::from_utf8(out.to_vec()).unwrap();
        assert!(text.starts_with("event: message_start\n"), "{text}");
        assert!(
            text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
            "{text}"
        );
    }
}
