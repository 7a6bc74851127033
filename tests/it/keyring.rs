//! The keyring, for real: inside a private D-Bus session with an unlocked gnome-keyring, the
//! real binary logs in, the token is in the Secret Service (and on no disk file), a send uses
//! it, and logout removes it. CI installs dbus, gnome-keyring and libsecret-tools.

use crate::harness::KeyringHost;

#[tokio::test(flavor = "multi_thread")]
async fn login_send_logout_through_the_secret_service() {
    let Some(host) = KeyringHost::start().await else {
        return;
    };
    let script = r#"
        printf '%s\n' "$TOKEN" | "$BIN" login --server "$SERVER" --secure-storage-only
        stored=$(secret-tool lookup service reflecto username default)
        [ "$stored" = "$TOKEN" ] || { echo "keyring holds '$stored'" >&2; exit 10; }
        if grep -rqF "$TOKEN" "$REFLECTO_CONFIG_DIR"; then echo "token found on disk" >&2; exit 11; fi
        "$BIN" auth status | grep -q "OS keyring"
        "$BIN" send "sent with the keyring token"
        "$BIN" logout
        if secret-tool lookup service reflecto username default; then echo "still in keyring" >&2; exit 12; fi
        echo KEYRING-OK
    "#;
    let (_, stderr) = host.run(script, &[]);
    assert!(!stderr.contains(&host.token), "the token leaked to stderr");
    assert_eq!(
        host.relay.count("SELECT COUNT(*) FROM messages"),
        1,
        "the send went through with the keyring's token"
    );
}
