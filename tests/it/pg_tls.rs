//! `sslmode=require` against a real TLS PostgreSQL (SPEC §3): a CA and a server certificate
//! made here with `rcgen`, a throwaway cluster of its own with `ssl = on` that accepts only TLS
//! connections (`hostssl`), and the real `reflecto` binary trusting the CA through
//! `SSL_CERT_FILE` (a child process: setting the variable in this multi-threaded test process
//! would not be safe). With the right CA the store works; with another CA the connection is
//! refused with exit 2 and `store_unreachable`, naming the certificate, printing no password.

use crate::harness::{BIN, required};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use reflecto::pg_cluster::{Extras, PgCluster};
use std::path::Path;
use std::process::{Command, Output};

const PASSWORD: &str = "pg-tls-pw-never-printed-0b9d";

/// A CA: its certificate (PEM) and what signs with it.
fn authority(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}

/// A server certificate for 127.0.0.1 and localhost signed by `ca`: (cert PEM, key PEM).
fn server_certificate(ca: &Issuer<'static, KeyPair>) -> (String, String) {
    let mut params =
        CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, "reflecto test postgres");
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, ca).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// `reflecto admin --database URL ARGS` trusting only the CA in `ca_file`.
fn admin(url: &str, ca_file: &Path, args: &[&str]) -> (Output, String) {
    let out = Command::new(BIN)
        .args(["admin", "--database", url])
        .args(args)
        .env("SSL_CERT_FILE", ca_file)
        .env_remove("SSL_CERT_DIR")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out, text)
}

#[test]
fn sslmode_require_verifies_the_server_against_ssl_cert_file_and_refuses_a_wrong_ca() {
    if !required(
        reflecto::pg_cluster::binaries().is_some(),
        "PostgreSQL",
        "apt-get install postgresql",
    ) {
        return;
    }
    let (ca_pem, ca) = authority("reflecto test CA");
    let (wrong_ca_pem, _) = authority("some other CA");
    let (cert_pem, key_pem) = server_certificate(&ca);
    let extras = Extras {
        files: vec![
            ("server.crt".into(), cert_pem.into_bytes()),
            ("server.key".into(), key_pem.into_bytes()),
            // TCP only over TLS, so a success below cannot be a plain connection.
            (
                "pg_hba.conf".into(),
                b"local all all trust\nhostssl all all 127.0.0.1/32 trust\n".to_vec(),
            ),
        ],
        settings: [
            ("ssl", "on"),
            ("ssl_cert_file", "server.crt"),
            ("ssl_key_file", "server.key"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .to_vec(),
    };
    let cluster = PgCluster::start_with(&extras).expect("starting a TLS PostgreSQL cluster");
    let dir = tempfile::tempdir().unwrap();
    let (right, wrong) = (dir.path().join("ca.pem"), dir.path().join("wrong-ca.pem"));
    std::fs::write(&right, ca_pem).unwrap();
    std::fs::write(&wrong, wrong_ca_pem).unwrap();
    let url = |mode: &str| {
        format!(
            "postgres://postgres:{PASSWORD}@127.0.0.1:{}/postgres?sslmode={mode}",
            cluster.port()
        )
    };

    let (out, text) = admin(&url("require"), &right, &["user", "add", "tls-alice"]);
    assert!(out.status.success(), "the right CA: {text}");
    let (out, text) = admin(&url("require"), &right, &["user", "list"]);
    assert!(out.status.success(), "{text}");
    assert!(text.starts_with("tls-alice\t"), "{text}");

    let (out, text) = admin(&url("require"), &wrong, &["user", "list"]);
    assert_eq!(out.status.code(), Some(2), "a wrong CA: {text}");
    assert!(text.contains("store_unreachable"), "{text}");
    assert!(
        text.contains("certificate"),
        "the error names the cause: {text}"
    );
    assert!(!text.contains(PASSWORD), "{text}");
    assert!(!text.contains("tls-alice"), "{text}");

    // The server refuses a plain connection: the successes above went over TLS.
    let (out, text) = admin(&url("disable"), &right, &["user", "list"]);
    assert_eq!(out.status.code(), Some(2), "sslmode=disable: {text}");
    assert!(text.contains("store_unreachable"), "{text}");
    assert!(text.contains("no encryption"), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
}
