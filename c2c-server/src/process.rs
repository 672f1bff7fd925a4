//! The processes behind registrations. A server records its own process, its parent (the
//! client that started it, e.g. Claude Code) and the host, so that a name held by a process
//! that has exited can be taken back, a health check never takes a running session's name, and
//! a hook finds the session whose server shares its Claude Code process. Everything here is
//! best effort: what cannot be known counts as "still running", the side that takes nothing.

/// Where a server process runs and who started it, as a registration records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    /// The server's own process id.
    pub pid: u32,
    /// The process that started the server (its MCP client), if known.
    pub client_pid: Option<u32>,
    /// The machine's name: process ids mean something only on the machine that recorded them.
    pub host: String,
}

impl ProcessInfo {
    /// This process.
    pub fn current() -> Self {
        ProcessInfo {
            pid: std::process::id(),
            client_pid: parent_of(std::process::id()),
            host: host(),
        }
    }
}

/// Whether the process `pid` recorded on `host` may still be running. A process on another
/// machine (or in another container) cannot be checked, so it counts as running; no recorded
/// process (a registration made from the command line, or by an older version) does not.
pub fn may_be_running(pid: Option<i64>, recorded_host: Option<&str>) -> bool {
    let Some(pid) = pid.and_then(|p| u32::try_from(p).ok()) else {
        return false;
    };
    match recorded_host {
        Some(h) if h != host() => true,
        _ => alive(pid),
    }
}

/// The ids of this process's ancestors, nearest first, at most `depth` of them.
pub fn ancestors(depth: usize) -> Vec<u32> {
    let mut out = Vec::new();
    let mut pid = std::process::id();
    while out.len() < depth {
        match parent_of(pid) {
            Some(parent) if parent != 0 && parent != pid && !out.contains(&parent) => {
                out.push(parent);
                pid = parent;
            }
            _ => break,
        }
    }
    out
}

/// This machine (empty if it cannot be told): its name and, on Linux, its process-id
/// namespace, since two containers with one hostname may still number processes apart.
pub fn host() -> String {
    static HOST: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HOST.get_or_init(imp::host).clone()
}

/// Whether a process with this id is running on this machine.
pub fn alive(pid: u32) -> bool {
    pid != 0 && imp::alive(pid)
}

/// The parent of process `pid`, if it can be found.
pub fn parent_of(pid: u32) -> Option<u32> {
    imp::parent_of(pid)
}

#[cfg(unix)]
mod imp {
    pub fn alive(pid: u32) -> bool {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        // Signal 0 checks existence and permission without sending anything; EPERM means the
        // process exists but belongs to someone else.
        // SAFETY: kill with signal 0 has no effect on the target.
        let rc = unsafe { libc::kill(pid, 0) };
        rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }

    pub fn host() -> String {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname writes at most that much.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc != 0 {
            return String::new();
        }
        let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        let name = String::from_utf8_lossy(&buf[..end]).into_owned();
        match std::fs::read_link("/proc/self/ns/pid") {
            // e.g. "pid:[4026531836]"
            Ok(namespace) => format!("{name} {}", namespace.display()),
            Err(_) => name,
        }
    }

    #[cfg(target_os = "linux")]
    pub fn parent_of(pid: u32) -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name in parentheses may hold spaces: the fields follow the last `)`.
        let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
        fields.nth(1)?.parse().ok()
    }

    #[cfg(any(target_os = "macos", target_os = "ios"))]
    pub fn parent_of(pid: u32) -> Option<u32> {
        // SAFETY: proc_bsdinfo is plain old data, for which all zeroes is a valid value.
        let mut info: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::proc_bsdinfo>() as libc::c_int;
        // SAFETY: `info` is a valid, writable proc_bsdinfo of the size passed.
        let written = unsafe {
            libc::proc_pidinfo(
                pid as libc::c_int,
                libc::PROC_PIDTBSDINFO,
                0,
                (&mut info as *mut libc::proc_bsdinfo).cast(),
                size,
            )
        };
        (written == size).then_some(info.pbi_ppid)
    }

    #[cfg(not(any(target_os = "linux", target_os = "macos", target_os = "ios")))]
    pub fn parent_of(pid: u32) -> Option<u32> {
        // Other Unixes: only this process's own parent is known without a process table.
        (pid == std::process::id()).then(std::os::unix::process::parent_id)
    }
}

#[cfg(windows)]
mod imp {
    use windows_sys::Win32::Foundation::{CloseHandle, INVALID_HANDLE_VALUE, WAIT_OBJECT_0};
    use windows_sys::Win32::System::Diagnostics::ToolHelp::{
        CreateToolhelp32Snapshot, PROCESSENTRY32W, Process32FirstW, Process32NextW,
        TH32CS_SNAPPROCESS,
    };
    use windows_sys::Win32::System::Threading::{
        OpenProcess, PROCESS_QUERY_LIMITED_INFORMATION, WaitForSingleObject,
    };

    pub fn alive(pid: u32) -> bool {
        // SAFETY: plain Win32 calls on a handle this function opens and closes.
        unsafe {
            let handle = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid);
            if handle.is_null() {
                // Access denied still means it exists; anything else, that it does not.
                return std::io::Error::last_os_error().raw_os_error() == Some(5);
            }
            // A process handle is signalled once the process has ended; a failed wait cannot
            // tell, so it counts as running.
            let state = WaitForSingleObject(handle, 0);
            CloseHandle(handle);
            state != WAIT_OBJECT_0
        }
    }

    pub fn host() -> String {
        std::env::var("COMPUTERNAME").unwrap_or_default()
    }

    pub fn parent_of(pid: u32) -> Option<u32> {
        // SAFETY: the snapshot handle is checked, walked with a correctly sized entry, and
        // closed.
        unsafe {
            let snapshot = CreateToolhelp32Snapshot(TH32CS_SNAPPROCESS, 0);
            if snapshot == INVALID_HANDLE_VALUE {
                return None;
            }
            let mut entry: PROCESSENTRY32W = std::mem::zeroed();
            entry.dwSize = std::mem::size_of::<PROCESSENTRY32W>() as u32;
            let mut found = None;
            let mut more = Process32FirstW(snapshot, &mut entry) != 0;
            while more {
                if entry.th32ProcessID == pid {
                    found = Some(entry.th32ParentProcessID);
                    break;
                }
                more = Process32NextW(snapshot, &mut entry) != 0;
            }
            CloseHandle(snapshot);
            found
        }
    }
}

#[cfg(not(any(unix, windows)))]
mod imp {
    pub fn alive(_pid: u32) -> bool {
        // Cannot tell: count it as running, which takes nothing from anyone.
        true
    }

    pub fn host() -> String {
        String::new()
    }

    pub fn parent_of(_pid: u32) -> Option<u32> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_an_exited_one_is_not() {
        assert!(alive(std::process::id()));
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .arg("--list")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(
            !alive(pid),
            "an exited (and reaped) child counts as running"
        );
        assert!(!alive(0));
    }

    #[test]
    fn ancestors_start_with_the_parent() {
        let info = ProcessInfo::current();
        assert_eq!(info.pid, std::process::id());
        let chain = ancestors(8);
        assert!(!chain.is_empty());
        assert_eq!(Some(chain[0]), info.client_pid);
        assert!(chain.iter().all(|&p| alive(p)), "{chain:?}");
    }

    #[test]
    fn other_hosts_count_as_running_and_unrecorded_processes_do_not() {
        assert!(may_be_running(
            Some(1),
            Some("surely-not-this-host.invalid")
        ));
        assert!(!may_be_running(None, Some(&host())));
        assert!(!may_be_running(Some(-5), None));
        assert!(may_be_running(
            Some(i64::from(std::process::id())),
            Some(&host())
        ));
    }
}
