//! `--tls`: the FTPS rows. One self-signed certificate (made with the openssl
//! command in the bench's temporary directory) serves both servers; each
//! requires TLS of its anonymous clients, so no row can fall back to clear.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workloads that run under TLS, named as in the table.
pub const WORKLOADS: &[&str] = &[
    "tls-retr-big",
    "tls-stor-big",
    "tls-login-churn",
    "tls-idle-memory",
];

/// The plain workload a TLS row runs (the client does AUTH TLS and PROT P).
pub fn plain_name(workload: &str) -> &str {
    workload.strip_prefix("tls-").unwrap_or(workload)
}

/// The certificate and key, in a directory of their own (outside the served
/// root), removed with the value.
pub struct Cert {
    dir: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Drop for Cert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Cert {
    /// An ECDSA P-256 key (certbot's default), or with `rsa` an RSA 2048 one,
    /// and its certificate for localhost.
    pub fn create(rsa: bool) -> Cert {
        let dir = std::env::temp_dir().join(format!("minftpd-bench-{}.tls", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = Cert {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            dir,
        };
        let key: &[&str] = if rsa {
            &["rsa:2048"]
        } else {
            &["ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
        };
        let status = Command::new("openssl")
            .args(["req", "-x509", "-newkey"])
            .args(key)
            .args(["-nodes", "-days", "2", "-subj", "/CN=localhost", "-keyout"])
            .arg(&cert.key)
            .arg("-out")
            .arg(&cert.cert)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("run openssl (apt-get install openssl)");
        assert!(status.success(), "openssl req failed");
        cert
    }
}

/// minftpd: TLS required of everyone (named and anonymous); data
/// connections need not resume the control session (the default).
pub fn minftpd_args(cert: &Cert) -> Vec<String> {
    let tls = [
        "tls=required".to_string(),
        "tls_anon_required=yes".into(),
        format!("tls_cert_file={}", cert.cert.display()),
        format!("tls_key_file={}", cert.key.display()),
    ];
    tls.into_iter().flat_map(|o| ["-o".into(), o]).collect()
}

/// vsftpd: the same policy. require_ssl_reuse=NO as minftpd's default
/// (vsftpd's own default, YES, would also demand what the bench client does
/// anyway, resuming, but vsftpd 3.0.3 cannot check it under TLS 1.3).
/// ssl_ciphers=HIGH: vsftpd's default is DES-CBC3-SHA, used if TLS 1.2 is.
pub fn vsftpd_conf(cert: &Cert) -> String {
    format!(
        "ssl_enable=YES\nallow_anon_ssl=YES\nforce_anon_logins_ssl=YES\nforce_anon_data_ssl=YES\n\
         force_local_logins_ssl=YES\nforce_local_data_ssl=YES\nrequire_ssl_reuse=NO\n\
         ssl_ciphers=HIGH\nrsa_cert_file={}\nrsa_private_key_file={}\n",
        cert.cert.display(),
        cert.key.display()
    )
}

/// Stops early with a clear message when minftpd was built without TLS.
pub fn check_minftpd(binary: &Path, cert: &Cert) {
    let out = Command::new(binary)
        .args(["-c", "/dev/null", "--check-config", "-r", "/"])
        .args(minftpd_args(cert))
        .output()
        .expect("run minftpd --check-config");
    assert!(
        out.status.success(),
        "{} refuses tls = required: build it with --features tls (make bench-tls)\n{}",
        binary.display(),
        String::from_utf8_lossy(&out.stderr)
    );
}
