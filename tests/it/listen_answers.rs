//! `reflecto listen` answering back (SPEC §1.15, §1.16) against a fake freedesktop
//! notification daemon on a private D-Bus: a `dbus-daemon` of the test's own and an
//! `org.freedesktop.Notifications` object served by this process (zbus), which keeps what is
//! on its "screen" (a replaced notification stays one entry), records `CloseNotification`,
//! and emits `ActionInvoked` as a person pressing a button would. The real binary listens;
//! the real `reflecto clear` and `reflecto ask` send.

use crate::harness::{BIN, Desk, Relay, lines_of, spawn_piped, stdout_of, tools};
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zbus::object_server::SignalEmitter;

const PATH: &str = "/org/freedesktop/Notifications";

/// One notification on the fake screen.
#[derive(Debug, Clone, PartialEq)]
struct Shown {
    summary: String,
    body: String,
    actions: Vec<String>,
}

#[derive(Default)]
struct Desktop {
    next: u32,
    screen: HashMap<u32, Shown>,
    /// Every Notify as (replaces_id, the id answered).
    notifies: Vec<(u32, u32)>,
    closes: Vec<u32>,
}

struct FakeDaemon(Arc<Mutex<Desktop>>);

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl FakeDaemon {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        _app_name: String,
        replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        _hints: HashMap<String, zbus::OwnedVariant>,
        _expire_timeout: i32,
    ) -> u32 {
        let mut desk = self.0.lock().unwrap();
        let id = if replaces_id != 0 && desk.screen.contains_key(&replaces_id) {
            replaces_id
        } else {
            desk.next += 1;
            desk.next
        };
        desk.screen.insert(
            id,
            Shown {
                summary,
                body,
                actions,
            },
        );
        desk.notifies.push((replaces_id, id));
        id
    }

    async fn close_notification(
        &self,
        id: u32,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) {
        {
            let mut desk = self.0.lock().unwrap();
            desk.closes.push(id);
            desk.screen.remove(&id);
        }
        // Reason 3: closed by a call to CloseNotification.
        let _ = Self::notification_closed(&emitter, id, 3).await;
    }

    fn get_capabilities(&self) -> Vec<String> {
        vec!["actions".into(), "body".into()]
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        (
            "fake".into(),
            "reflecto-tests".into(),
            "1".into(),
            "1.2".into(),
        )
    }

    #[zbus(signal)]
    async fn action_invoked(
        emitter: &SignalEmitter<'_>,
        id: u32,
        action_key: &str,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn notification_closed(
        emitter: &SignalEmitter<'_>,
        id: u32,
        reason: u32,
    ) -> zbus::Result<()>;
}

/// A private bus (its own `dbus-daemon`) with the fake daemon on it.
struct Bus {
    daemon: Child,
    address: String,
    connection: zbus::Connection,
    desktop: Arc<Mutex<Desktop>>,
}

/// The fake daemon on the bus at `address`, owning the service's name.
async fn serve(address: &str, desktop: &Arc<Mutex<Desktop>>) -> zbus::Connection {
    zbus::connection::Builder::address(address)
        .name("org.freedesktop.Notifications")
        .serve_at(PATH, FakeDaemon(desktop.clone()))
        .build()
        .await
        .unwrap()
}

impl Bus {
    async fn start() -> Bus {
        let mut daemon = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut address = String::new();
        BufReader::new(daemon.stdout.as_mut().unwrap())
            .read_line(&mut address)
            .unwrap();
        let address = address.trim().to_owned();
        let desktop = Arc::new(Mutex::new(Desktop::default()));
        let connection = serve(&address, &desktop).await;
        Bus {
            daemon,
            address,
            connection,
            desktop,
        }
    }

    /// The daemon restarts: a new connection, so a new unique name on the bus, and a screen
    /// where another program's notification `body` has the id `id`.
    async fn restart_with(&mut self, id: u32, body: &str) {
        self.connection
            .release_name("org.freedesktop.Notifications")
            .await
            .unwrap();
        let mut fresh = Desktop {
            next: id,
            ..Desktop::default()
        };
        let other = Shown {
            summary: "another program".into(),
            body: body.into(),
            actions: vec![],
        };
        fresh.screen.insert(id, other);
        self.desktop = Arc::new(Mutex::new(fresh));
        self.connection = serve(&self.address, &self.desktop).await;
    }

    /// A person pressing `action` on notification `id`.
    async fn press(&self, id: u32, action: &str) {
        let iface = self
            .connection
            .object_server()
            .interface::<_, FakeDaemon>(PATH)
            .await
            .unwrap();
        FakeDaemon::action_invoked(iface.signal_emitter(), id, action)
            .await
            .unwrap();
    }

    /// The id of the notification on screen whose body is `body`, once there.
    async fn shown(&self, body: &str) -> (u32, Shown) {
        crate::harness::eventually(
            &format!("'{body}' on screen"),
            Duration::from_secs(30),
            || async {
                let desk = self.desktop.lock().unwrap();
                desk.screen
                    .iter()
                    .find(|(_, s)| s.body == body)
                    .map(|(id, s)| (*id, s.clone()))
                    .ok_or_else(|| format!("on screen: {:?}", desk.screen))
            },
        )
        .await
    }
}

impl Drop for Bus {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// A private bus with the fake daemon, and alice's relay with a desk paired to it; `None`
/// without `dbus-daemon` (the test skips, and fails in CI).
async fn desktop_story() -> Option<(Bus, Relay, String, Desk)> {
    if !tools(&["dbus-daemon"], "dbus") {
        return None;
    }
    let bus = Bus::start().await;
    let (relay, token, desk) = Desk::on_a_relay().await;
    Some((bus, relay, token, desk))
}

/// The real `reflecto` sending as alice's token, off the fake bus.
fn sender(relay: &Relay, token: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("REFLECTO_CONFIG_DIR", relay.dir.path().join("sender"))
        .env("REFLECTO_SERVER", &relay.url)
        .env("REFLECTO_TOKEN", token)
        .env_remove("DBUS_SESSION_BUS_ADDRESS");
    cmd
}

/// Runs a `send` (or `ask`) and returns the message id it printed.
fn sent_id(mut cmd: Command) -> String {
    let line = stdout_of(cmd.output().unwrap());
    line.split(':').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn listen_replaces_closes_on_clear_and_turns_a_button_into_the_answer_ask_prints() {
    let Some((bus, relay, token, desk)) = desktop_story().await else {
        return;
    };
    let mut listen = spawn_piped(
        desk.cmd()
            .args(["listen", "--json"])
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address),
    );
    let lines = lines_of(listen.stdout.take().unwrap());
    let sender = |args: &[&str]| sender(&relay, &token, args);
    let send = |args: &[&str]| sent_id(sender(args));

    // A replaced notification is one entry, showing the newer text.
    send(&["send", "build running", "--title", "CI", "--key", "ci:42"]);
    let (first, _) = bus.shown("build running").await;
    send(&["send", "build passed", "--title", "CI", "--key", "ci:42"]);
    let (second, _) = bus.shown("build passed").await;
    assert_eq!(second, first, "replaced in place (replaces_id)");
    {
        let desktop = bus.desktop.lock().unwrap();
        assert_eq!(desktop.screen.len(), 1, "{:?}", desktop.screen);
        assert!(
            desktop.notifies.contains(&(first, first)),
            "{:?}",
            desktop.notifies
        );
    }

    // A cleared message is closed.
    let doomed = send(&["send", "disk 91% full", "--title", "db1"]);
    let (doomed_on_screen, _) = bus.shown("disk 91% full").await;
    stdout_of(sender(&["clear", &doomed]).output().unwrap());
    crate::harness::eventually("the clear closed it", Duration::from_secs(30), || async {
        let desktop = bus.desktop.lock().unwrap();
        if desktop.closes.contains(&doomed_on_screen) {
            Ok(())
        } else {
            Err(format!("closes: {:?}", desktop.closes))
        }
    })
    .await;
    assert_eq!(
        bus.desktop.lock().unwrap().screen.len(),
        1,
        "only the build is left"
    );

    // A button press is the answer `ask` prints.
    let mut ask = sender(&[
        "ask",
        "Deploy v42 to prod?",
        "--option",
        "Deploy",
        "--option",
        "Abort",
        "--wait",
        "60",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let (question, shown) = bus.shown("Deploy v42 to prod?").await;
    assert_eq!(
        shown.actions,
        [
            "default",
            "Acknowledge",
            "response-0",
            "Deploy",
            "response-1",
            "Abort"
        ],
        "the body and one button per option"
    );
    // notify-rust subscribes to the signals after Notify was answered: give it a moment.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (answer_tx, answer) = std::sync::mpsc::channel();
    let ask_out = ask.stdout.take().unwrap();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(ask_out).read_line(&mut line);
        let _ = answer_tx.send((Instant::now(), line));
    });
    let pressed = Instant::now();
    bus.press(question, "response-0").await;
    let (printed, line) = loop {
        match answer.recv_timeout(Duration::from_secs(5)) {
            Ok(answered) => break answered,
            // Pressed before the waiter listened: a person presses again.
            Err(_) if pressed.elapsed() < Duration::from_secs(30) => {
                bus.press(question, "response-0").await
            }
            Err(_) => panic!("ask never printed the answer"),
        }
    };
    assert_eq!(line, "Deploy\n");
    let latency = printed - pressed;
    eprintln!("button press in listen → ask printed the answer: {latency:?}");
    let status = ask.wait().unwrap();
    assert!(status.success());
    // The relay recorded the acknowledgement with that response, from this device.
    let ask_id = {
        let desktop_lines: Vec<String> = lines.try_iter().collect();
        let ack = desktop_lines
            .iter()
            .find(|l| l.contains("\"acknowledged\""))
            .cloned()
            .unwrap_or_else(|| {
                lines
                    .recv_timeout(Duration::from_secs(10))
                    .expect("listen printed the acknowledgement")
            });
        let ack: serde_json::Value = serde_json::from_str(&ack).unwrap();
        assert_eq!(ack["response"], "Deploy");
        ack["acknowledged"].as_str().unwrap().to_owned()
    };
    let status = relay.api().status(&token, &ask_id).await;
    assert_eq!(status["acknowledged"]["response"], "Deploy");
    assert_eq!(status["acknowledged"]["device_id"], desk.device.as_str());
    // Dealt with, the answered question leaves the screen.
    crate::harness::eventually(
        "the answered question closed",
        Duration::from_secs(10),
        || async {
            let desktop = bus.desktop.lock().unwrap();
            if desktop.screen.contains_key(&question) {
                Err(format!("{:?}", desktop.screen))
            } else {
                Ok(())
            }
        },
    )
    .await;
    let _ = listen.kill();
    let _ = listen.wait();
}

/// Regression: a `clear` closed, and a note of the same key replaced, only what the same run
/// of `listen` had shown, so a `listen --poll` from cron (a new run each time) or a restarted
/// service left the earlier notification on screen. Once the daemon itself restarted, the ids
/// an earlier run kept are another program's: they are left alone.
#[tokio::test(flavor = "multi_thread")]
async fn a_later_run_of_listen_closes_and_replaces_what_an_earlier_run_showed() {
    let Some((mut bus, relay, token, desk)) = desktop_story().await else {
        return;
    };
    let send = |args: &[&str]| sent_id(sender(&relay, &token, args));
    let poll = |bus: &Bus| {
        let mut listen = desk.cmd();
        listen
            .args(["listen", "--poll"])
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address);
        // stdout_of asserts that it exited 0.
        stdout_of(listen.output().unwrap());
    };

    // One run shows a build's state and a disk warning, and ends.
    send(&["send", "build running", "--title", "CI", "--key", "ci:42"]);
    let disk = send(&["send", "disk 91% full", "--title", "db1"]);
    poll(&bus);
    let (build_on_screen, _) = bus.shown("build running").await;
    let (disk_on_screen, _) = bus.shown("disk 91% full").await;

    // The next run replaces the build's notification in place and closes the cleared one.
    let passed = send(&["send", "build passed", "--title", "CI", "--key", "ci:42"]);
    stdout_of(sender(&relay, &token, &["clear", &disk]).output().unwrap());
    poll(&bus);
    let (replaced, _) = bus.shown("build passed").await;
    assert_eq!(replaced, build_on_screen, "replaced in place (replaces_id)");
    {
        let desktop = bus.desktop.lock().unwrap();
        assert_eq!(desktop.closes, [disk_on_screen]);
        assert_eq!(desktop.screen.len(), 1, "{:?}", desktop.screen);
        let replacing = (build_on_screen, build_on_screen);
        assert!(
            desktop.notifies.contains(&replacing),
            "{:?}",
            desktop.notifies
        );
    }

    // The daemon restarts, and another program's notification gets the build's old id: a
    // clear of the build and a new note of its key leave that one alone.
    bus.restart_with(build_on_screen, "mail from Bob").await;
    stdout_of(
        sender(&relay, &token, &["clear", &passed])
            .output()
            .unwrap(),
    );
    send(&["send", "build fixed", "--title", "CI", "--key", "ci:42"]);
    poll(&bus);
    let (fixed, _) = bus.shown("build fixed").await;
    assert_ne!(fixed, build_on_screen);
    let desktop = bus.desktop.lock().unwrap();
    assert!(desktop.closes.is_empty(), "{:?}", desktop.closes);
    assert!(
        desktop.notifies.iter().all(|&(replaces, _)| replaces == 0),
        "{:?}",
        desktop.notifies
    );
    assert_eq!(desktop.screen[&build_on_screen].body, "mail from Bob");
}

/// Regression: a `listen` that outlived its notification daemon closed and replaced by the
/// ids the old daemon gave, which the new one gives to other programs' notifications.
#[tokio::test(flavor = "multi_thread")]
async fn a_listen_that_outlives_its_daemon_leaves_the_new_daemons_notifications_alone() {
    let Some((mut bus, relay, token, desk)) = desktop_story().await else {
        return;
    };
    let send = |args: &[&str]| sent_id(sender(&relay, &token, args));
    let mut listen = spawn_piped(
        desk.cmd()
            .args(["listen", "--json"])
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address),
    );
    let lines = lines_of(listen.stdout.take().unwrap());
    send(&["send", "build running", "--title", "CI", "--key", "ci:42"]);
    let disk = send(&["send", "disk 91% full", "--title", "db1"]);
    bus.shown("build running").await;
    let (disk_on_screen, _) = bus.shown("disk 91% full").await;
    assert!(lines.recv_timeout(Duration::from_secs(10)).is_ok());

    // The daemon restarts under the running listener; another program's notification gets
    // the disk warning's old id.
    bus.restart_with(disk_on_screen, "mail from Bob").await;
    stdout_of(sender(&relay, &token, &["clear", &disk]).output().unwrap());
    let passed_id = send(&["send", "build passed", "--title", "CI", "--key", "ci:42"]);
    let (passed, _) = bus.shown("build passed").await;
    // The clear was handled before the note after it: the kept ids show both.
    crate::harness::eventually("the clear handled", Duration::from_secs(10), || async {
        let kept = std::fs::read_to_string(desk.data.path().join("reflecto/listen-default.shown"))
            .unwrap_or_default();
        if kept.contains(&disk) || !kept.contains(&passed_id) {
            Err(kept)
        } else {
            Ok(())
        }
    })
    .await;
    let desktop = bus.desktop.lock().unwrap();
    assert!(desktop.closes.is_empty(), "{:?}", desktop.closes);
    assert_eq!(
        desktop.notifies,
        [(0, passed)],
        "a new notification, no replaces_id"
    );
    assert_eq!(desktop.screen[&disk_on_screen].body, "mail from Bob");
    drop(desktop);
    let _ = listen.kill();
    let _ = listen.wait();
}
