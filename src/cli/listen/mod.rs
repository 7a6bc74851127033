//! `reflecto listen` (SPEC §2.1): holds the device's stream open and, for each event, opens
//! the sealed box, hands the desktop notification to the notifier, prints a line, runs
//! `--exec`, and only then acks. Our own loop reconnects with backoff and `Last-Event-ID` and never exits on a network
//! error; a revoked device exits 3; SIGINT/SIGTERM exit 0 after acking what was handled.

mod notifier;
mod output;
#[cfg(all(unix, not(target_os = "macos")))]
mod screen;
mod seen;
mod shown_before;
mod state_file;

use super::runtime;
use crate::api::sealed::{SecretKey, parse_secret_key};
use crate::api::{ApiError, ErrorCode};
use crate::client::Client;
use crate::client::stream::{
    EventKind, EventStream, StreamClient, StreamError, SyncEvent, decode, decode_clear,
    reconnect_delay,
};
use crate::credentials::{Credentials, DEFAULT_PROFILE};
use clap::Args;
use futures_util::{FutureExt, StreamExt};
use notifier::{Ack, Notifier};
use output::{Note, run_hook};
use seen::Seen;
use shown_before::ShownBefore;
use std::future::Future;
use std::io::Write;
use std::pin::Pin;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct ListenArgs {
    /// Credential profile this computer was paired under (`reflecto pair`)
    #[arg(long, env = "REFLECTO_PROFILE", default_value = DEFAULT_PROFILE, value_name = "NAME")]
    pub profile: String,
    /// Print one JSON object per notification: {"event_id","id","envelope"}
    #[arg(long)]
    pub json: bool,
    /// Run CMD through `sh -c` for each notification, with REFLECTO_ID, REFLECTO_TITLE,
    /// REFLECTO_MESSAGE, REFLECTO_PRIORITY, REFLECTO_TAGS, REFLECTO_URL and REFLECTO_SOURCE set
    /// and the JSON object on stdin
    #[arg(long, value_name = "CMD")]
    pub exec: Option<String>,
    /// Do not show desktop notifications (print and --exec only)
    #[arg(long)]
    pub no_notify: bool,
    /// Handle what is pending, ack it, and exit
    #[arg(long)]
    pub poll: bool,
}

/// Acks are sent when the stream has nothing more ready, or after this many events.
const ACK_BATCH: usize = 50;
/// `--poll`: the relay sends its whole backlog at once; this much quiet means it is done.
const POLL_QUIET: Duration = Duration::from_secs(2);
/// On exit, notifications still queued get this long to be shown.
const FINAL_NOTIFY_WAIT: Duration = Duration::from_secs(5);
/// On SIGINT/SIGTERM, the last acks get this long.
const FINAL_ACK_WAIT: Duration = Duration::from_secs(5);
/// How long an acknowledgement (a click) is retried while the relay is unreachable.
const ACKNOWLEDGE_RETRY: Duration = Duration::from_secs(120);

struct Listener {
    client: StreamClient,
    key: SecretKey,
    seen: Seen,
    notifier: Option<Notifier>,
    json: bool,
    exec: Option<String>,
    last_event_id: Option<String>,
    pending_acks: Vec<String>,
    seen_warned: bool,
}

type Shutdown = Pin<Box<dyn Future<Output = ()>>>;

/// Resolves on SIGINT or SIGTERM. Created first, so a signal during handling is not lost.
fn shutdown_signal() -> Result<Shutdown, ApiError> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term =
            signal(SignalKind::terminate()).map_err(|e| super::internal("SIGTERM handler", e))?;
        let mut int =
            signal(SignalKind::interrupt()).map_err(|e| super::internal("SIGINT handler", e))?;
        Ok(Box::pin(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }))
    }
    #[cfg(not(unix))]
    Ok(Box::pin(async {
        let _ = tokio::signal::ctrl_c().await;
    }))
}

fn revoked() -> ApiError {
    ApiError::new(
        ErrorCode::InvalidToken,
        "the relay refused this device's credential: the device was removed or revoked; pair again with `reflecto pair CODE`",
    )
}

/// How the reading of one connection ended.
enum Ended {
    Shutdown,
    Lost(String),
    PollDone,
}

pub fn run(args: ListenArgs) -> Result<(), ApiError> {
    let device = Credentials::from_env().device(&args.profile)?;
    let key = parse_secret_key(device.private_key.expose()).map_err(|e| {
        ApiError::new(
            ErrorCode::CliInternalError,
            format!(
                "the stored private key of profile '{}' is damaged ({e}); pair again",
                args.profile
            ),
        )
    })?;
    let acknowledger = Client::new(&device.server)?;
    let (clicks, clicked) = tokio::sync::mpsc::unbounded_channel();
    let credential = device.credential.clone();
    let data_dir = seen::data_dir();
    let mut listener = Listener {
        client: StreamClient::new(&device.server, device.credential)?,
        key,
        seen: Seen::load(&data_dir, &args.profile),
        notifier: (!args.no_notify)
            .then(|| Notifier::new(clicks, ShownBefore::load(&data_dir, &args.profile))),
        json: args.json,
        exec: args.exec,
        last_event_id: None,
        pending_acks: Vec::new(),
        seen_warned: false,
    };
    // One thread: a listener left running for months should stay small (SPEC target ≤ 15 MB).
    let runtime = runtime()?;
    runtime.block_on(async {
        let mut shutdown = shutdown_signal()?;
        // Clicks are posted apart from the stream: a slow acknowledgement holds up no event.
        tokio::spawn(acknowledge_clicks(
            acknowledger,
            credential,
            clicked,
            args.json,
        ));
        if !args.poll {
            eprintln!(
                "listening on {} as {} (Ctrl-C to stop)",
                listener.client.server(),
                device.device_id
            );
        }
        listener.run(args.poll, &mut shutdown).await
    })
}

/// Posts each click's acknowledgement (SPEC §1.16) as the device, then prints it. Each on a
/// task of its own: a click whose acknowledgement keeps failing (retried up to its budget)
/// holds up none of the clicks after it.
async fn acknowledge_clicks(
    client: Client,
    credential: crate::api::token::Secret,
    mut clicked: tokio::sync::mpsc::UnboundedReceiver<Ack>,
    json: bool,
) {
    let client = std::sync::Arc::new(client);
    while let Some(ack) = clicked.recv().await {
        tokio::spawn(acknowledge_click(
            client.clone(),
            credential.clone(),
            ack,
            json,
        ));
    }
}

async fn acknowledge_click(
    client: std::sync::Arc<Client>,
    credential: crate::api::token::Secret,
    Ack { id, response }: Ack,
    json: bool,
) {
    let posted = client
        .acknowledge(&credential, &id, response.as_deref(), ACKNOWLEDGE_RETRY)
        .await;
    match posted {
        Ok(_) => {
            let time = chrono::Local::now().format("%H:%M:%S").to_string();
            let line = Note::acknowledged_line(&id, response.as_deref(), json, &time);
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}").and_then(|()| out.flush());
        }
        Err(e) => eprintln!(
            "warning: could not acknowledge {id}: error[{}]: {}",
            e.code, e.message
        ),
    }
}

impl Listener {
    async fn run(&mut self, poll: bool, shutdown: &mut Shutdown) -> Result<(), ApiError> {
        let mut attempt = 0u32;
        // Whether a lost connection was reported: its end is reported too (SPEC §2.5), so a
        // warning on the terminal is never the last word once the stream is back.
        let mut lost = false;
        loop {
            let opened = tokio::select! {
                _ = &mut *shutdown => return self.finish().await,
                opened = self.client.open(self.last_event_id.as_deref()) => opened,
            };
            let (reason, retry_after) = match opened {
                Ok(stream) => {
                    attempt = 0;
                    if std::mem::take(&mut lost) {
                        eprintln!("connected again to {}", self.client.server());
                    }
                    match self.read(stream, poll, shutdown).await? {
                        Ended::Shutdown | Ended::PollDone => return self.finish().await,
                        // The relay ended the stream under a poll: what was handled is acked.
                        Ended::Lost(_) if poll => return self.finish().await,
                        Ended::Lost(reason) => (reason, None),
                    }
                }
                Err(StreamError::Revoked) => return Err(revoked()),
                Err(StreamError::Lost { reason, .. }) if poll => {
                    return Err(ApiError::new(
                        ErrorCode::RelayUnreachable,
                        format!("cannot read the stream: {reason}"),
                    ));
                }
                Err(StreamError::Lost {
                    reason,
                    retry_after,
                }) => (reason, retry_after),
            };
            let delay = retry_after
                .unwrap_or_else(|| reconnect_delay(attempt))
                .min(Duration::from_secs(3600));
            attempt = attempt.saturating_add(1);
            lost = true;
            eprintln!(
                "warning: {reason}; reconnecting in {}s",
                delay.as_secs().max(1)
            );
            tokio::select! {
                _ = &mut *shutdown => return self.finish().await,
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// Handles events of one connection until it ends.
    async fn read(
        &mut self,
        mut stream: EventStream,
        poll: bool,
        shutdown: &mut Shutdown,
    ) -> Result<Ended, ApiError> {
        // Acks left over from a lost connection go first.
        self.flush_acks().await?;
        loop {
            let item = match stream.next().now_or_never() {
                Some(item) => item,
                None => {
                    // Nothing ready: a good moment to ack what was handled.
                    self.flush_acks().await?;
                    let quiet = async {
                        if poll {
                            tokio::time::sleep(POLL_QUIET).await
                        } else {
                            std::future::pending().await
                        }
                    };
                    tokio::select! {
                        _ = &mut *shutdown => return Ok(Ended::Shutdown),
                        _ = quiet => return Ok(Ended::PollDone),
                        item = stream.next() => item,
                    }
                }
            };
            match item {
                Some(Ok(event)) => {
                    self.handle(event).await;
                    if self.pending_acks.len() >= ACK_BATCH {
                        self.flush_acks().await?;
                    }
                }
                Some(Err(StreamError::Revoked)) => return Err(revoked()),
                Some(Err(StreamError::Lost { reason, .. })) => return Ok(Ended::Lost(reason)),
                None => {
                    return Ok(Ended::Lost(format!(
                        "{} closed the stream",
                        self.client.server()
                    )));
                }
            }
        }
    }

    /// One event: decode, skip if already shown, notify, print, hook, then queue its ack. A
    /// clear closes the message's notification.
    async fn handle(&mut self, event: SyncEvent) {
        let SyncEvent {
            kind,
            event_id,
            data,
        } = event;
        if kind == EventKind::Clear {
            match decode_clear(&data) {
                Ok(id) => {
                    if let Some(notifier) = &self.notifier {
                        notifier.close(&id);
                    }
                }
                Err(e) => eprintln!("warning: event {event_id} skipped: {e}"),
            }
            self.queue_ack(event_id);
            return;
        }
        let note = match decode(&data, Some(&self.key)) {
            Ok(delivery) => Note::from_delivery(&event_id, delivery),
            Err(e) => {
                eprintln!("warning: event {event_id} skipped: {e}");
                None
            }
        };
        // Shown at most once per delivery (SPEC §2.1): a message and its event id, so an
        // event sent again (its ack lost) is not shown twice, while a repeat of an urgent
        // message (SPEC §1.17: a new event id) is. A bare id is what older versions wrote.
        let delivery_key = note.as_ref().map(|n| seen::delivery_key(&n.id, &event_id));
        if let Some(note) = note.filter(|n| {
            !self.seen.contains(&n.id)
                && !delivery_key.as_ref().is_some_and(|k| self.seen.contains(k))
        }) {
            let key = delivery_key.unwrap_or_else(|| note.id.clone());
            if let Err(e) = self.seen.insert(&key)
                && !std::mem::replace(&mut self.seen_warned, true)
            {
                eprintln!(
                    "warning: cannot record shown messages in {} ({e}); a restart may show one again",
                    self.seen.path().display()
                );
            }
            self.deliver(&note).await;
        }
        self.queue_ack(event_id);
    }

    fn queue_ack(&mut self, event_id: String) {
        if !event_id.is_empty() {
            self.pending_acks.push(event_id.clone());
            self.last_event_id = Some(event_id);
        }
    }

    async fn deliver(&mut self, note: &Note) {
        if let Some(notifier) = &self.notifier {
            notifier.show(note);
        }
        let line = if self.json {
            note.json()
        } else {
            note.human_line(&chrono::Local::now().format("%H:%M:%S").to_string())
        };
        // A closed stdout (a pipe whose reader left) must not stop notifications.
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}").and_then(|()| out.flush());
        drop(out);
        if let Some(command) = &self.exec
            && let Err(e) = run_hook(command, note).await
        {
            eprintln!("warning: {e} (message {})", note.id);
        }
    }

    /// Acks what was handled. A network failure keeps them for the next try.
    async fn flush_acks(&mut self) -> Result<(), ApiError> {
        if self.pending_acks.is_empty() {
            return Ok(());
        }
        match self.client.ack(&self.pending_acks).await {
            Ok(()) => {
                self.pending_acks.clear();
                Ok(())
            }
            Err(StreamError::Revoked) => Err(revoked()),
            Err(StreamError::Lost { reason, .. }) => {
                tracing::debug!(%reason, "ack failed; kept for the next try");
                Ok(())
            }
        }
    }

    async fn finish(&mut self) -> Result<(), ApiError> {
        if let Some(notifier) = self.notifier.take() {
            notifier.finish(FINAL_NOTIFY_WAIT).await;
        }
        match tokio::time::timeout(FINAL_ACK_WAIT, self.flush_acks()).await {
            Ok(result) => result?,
            Err(_) => {
                eprintln!("warning: the last acks timed out; the relay will offer them again")
            }
        }
        if !self.pending_acks.is_empty() {
            eprintln!(
                "warning: {} handled event(s) could not be acked; they will not be shown again",
                self.pending_acks.len()
            );
        }
        Ok(())
    }
}
