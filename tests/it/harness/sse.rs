//! The desktop stream read frame by frame, for tests that watch its raw SSE (ids, the stream
//! ending) rather than what `listen` makes of it.

/// A desktop stream being read: its SSE events one at a time.
pub struct SseEvents {
    resp: reqwest::Response,
    text: String,
    /// Whether the relay ended the stream (rather than a deadline passing).
    pub ended: bool,
}

impl SseEvents {
    pub fn new(resp: reqwest::Response) -> SseEvents {
        SseEvents {
            resp,
            text: String::new(),
            ended: false,
        }
    }

    /// The next `notification` event as (id, raw data), or `None` once the stream ended or
    /// `deadline` passed. Other events (a `clear`) are skipped.
    pub async fn next(&mut self, deadline: tokio::time::Instant) -> Option<(i64, String)> {
        loop {
            let (id, event, data) = self.next_event(deadline).await?;
            if event == "notification" {
                return Some((id, data));
            }
        }
    }

    /// The next event of any kind as (id, `event:` name, raw data), or `None` once the stream
    /// ended or `deadline` passed.
    pub async fn next_event(
        &mut self,
        deadline: tokio::time::Instant,
    ) -> Option<(i64, String, String)> {
        loop {
            while let Some(end) = self.text.find("\n\n") {
                let frame: String = self.text.drain(..end + 2).collect();
                let field = |name: &str| {
                    frame
                        .lines()
                        .find_map(|l| l.strip_prefix(name).map(str::trim).map(str::to_owned))
                };
                if let (Some(event), Some(id), Some(data)) =
                    (field("event:"), field("id:"), field("data:"))
                {
                    return Some((id.parse().unwrap(), event, data));
                }
            }
            match tokio::time::timeout_at(deadline, self.resp.chunk()).await {
                Ok(Ok(Some(chunk))) => self.text.push_str(&String::from_utf8_lossy(&chunk)),
                Ok(_) => {
                    self.ended = true;
                    return None;
                }
                Err(_) => return None,
            }
        }
    }
}

/// Reads SSE `notification` events until `n` arrived or `wait` passed: (id, raw data) pairs.
pub async fn read_sse_events(
    resp: reqwest::Response,
    n: usize,
    wait: std::time::Duration,
) -> Vec<(i64, String)> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut stream = SseEvents::new(resp);
    let mut events = Vec::new();
    while events.len() < n {
        match stream.next(deadline).await {
            Some(event) => events.push(event),
            None => break,
        }
    }
    events
}
