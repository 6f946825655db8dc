//! A server of a test's own (noida-db's Kafka protocol, SecantusDB) on a data
//! directory of its own, which a test can SIGKILL, stop, roll back and start again.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, unique, venv_bin, wait_for_port};

/// A server of this test's own on a data directory of its own, SIGKILLed (its whole
/// process group) and started again on the same port and data.
pub struct Server {
    child: Option<Child>,
    pub port: u16,
    dir: PathBuf,
    /// Program and the arguments before the data directory (`{port}` is replaced).
    cmd: (&'static str, &'static [&'static str]),
}

impl Server {
    pub fn start(name: &str, cmd: (&'static str, &'static [&'static str])) -> Server {
        let dir = std::env::temp_dir().join(unique(name));
        std::fs::create_dir_all(&dir).unwrap();
        let mut s = Server {
            child: None,
            port: free_port(),
            dir,
            cmd,
        };
        s.restart();
        s
    }

    /// noida-db with only its Kafka protocol.
    pub fn kafka() -> Server {
        Server::start(
            "chaos-noida",
            (
                "noida-db",
                &[
                    "start",
                    "--only",
                    "kafka",
                    "--kafka-port",
                    "{port}",
                    "--host",
                    "127.0.0.1",
                    "--data-dir",
                ],
            ),
        )
    }

    /// SecantusDB (a one-node replica set) on a storage directory.
    pub fn mongo() -> Server {
        Server::start(
            "chaos-secantus",
            (
                "secantusd-py",
                &["--host", "127.0.0.1", "--port", "{port}", "--storage-path"],
            ),
        )
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn uri(&self) -> String {
        format!("mongodb://127.0.0.1:{}/?directConnection=true", self.port)
    }

    pub fn restart(&mut self) {
        let port = self.port.to_string();
        let args = self
            .cmd
            .1
            .iter()
            .map(|a| if *a == "{port}" { port.as_str() } else { a });
        let child = Command::new(venv_bin(self.cmd.0))
            .args(args)
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        self.child = Some(child);
        wait_for_port(self.port, self.cmd.0);
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-9", "--", &format!("-{}", c.id())])
                .status();
            let _ = c.wait();
        }
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Server {
    /// Stops it with SIGTERM (noida-db saves its data) and waits until its port is free.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", "--", &format!("-{}", c.id())])
                .status();
            let _ = c.wait();
        }
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Freezes it (SIGSTOP to its process group): alive, holding its connections, answering nothing.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets a frozen server go on (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    /// Sends `sig` to its process group; a signal that does not land fails the test
    /// (a fault that was not injected proves nothing).
    fn signal(&self, sig: &str) {
        let c = self.child.as_ref().expect("the server is running");
        let ok = Command::new("kill")
            .args([sig, "--", &format!("-{}", c.id())])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill {sig} did not reach the server's group {}", c.id());
    }

    /// Copies its data directory to `to` (stop it first).
    pub fn save(&self, to: &Path) {
        copy_dir(&self.dir, to);
    }

    /// Replaces its data directory by `from` (kill or stop it first): it comes back as
    /// it was when `from` was saved.
    pub fn roll_back(&self, from: &Path) {
        std::fs::remove_dir_all(&self.dir).unwrap();
        copy_dir(from, &self.dir);
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest: PathBuf = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}
