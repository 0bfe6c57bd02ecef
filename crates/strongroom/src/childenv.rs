//! What `strongroom run` lets into its child's environment.
//!
//! Two rules (docs/security.md, "`strongroom run`"):
//! - The child never inherits Strongroom's own configuration: every `STRONGROOM_*`
//!   variable (master key, key ring, password, admin token, database URL, ...) and
//!   `PB_MASTER_KEY` are removed, so `run --env dev` can not hand a dev app the key to prod.
//! - A stored secret may not set a variable that changes what code runs or where its
//!   traffic goes (the dynamic loader, shells, interpreters, proxies, ...): whoever may
//!   write a secret in an env, or in `global` which every env falls back to, would
//!   otherwise run code as the next operator. Such names are refused unless allowed one
//!   by one with `--allow-name NAME`; `STRONGROOM_*` can not be allowed.

/// Names refused exactly (compared without regard to case).
pub const DENIED_NAMES: &[&str] = &[
    "PATH",
    "IFS",
    "ENV",
    "BASH_ENV",
    "SHELLOPTS",
    "BASHOPTS",
    "PS4",
    "PROMPT_COMMAND",
    "CDPATH",
    "GLOBIGNORE",
    "ZDOTDIR",
    "HOME",
    "SHELL",
    "TMPDIR",
    "EDITOR",
    "VISUAL",
    "PAGER",
    "BROWSER",
    "SSH_ASKPASS",
    "SUDO_ASKPASS",
    "GIT_ASKPASS",
    "GIT_SSH",
    "GIT_SSH_COMMAND",
    "GIT_EXEC_PATH",
    "GIT_EXTERNAL_DIFF",
    "GIT_PAGER",
    "GIT_EDITOR",
    "GIT_PROXY_COMMAND",
    "GIT_CONFIG_GLOBAL",
    "GIT_CONFIG_SYSTEM",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "NODE_OPTIONS",
    "NODE_PATH",
    "NODE_EXTRA_CA_CERTS",
    "RUBYOPT",
    "RUBYLIB",
    "GEM_HOME",
    "GEM_PATH",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "CLASSPATH",
    "PERLLIB",
    "PHPRC",
    "PHP_INI_SCAN_DIR",
    "GCONV_PATH",
    "HOSTALIASES",
    "RESOLV_HOST_CONF",
    "LOCALDOMAIN",
    "NLSPATH",
    "OPENSSL_CONF",
    "OPENSSL_ENGINES",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "CURL_CA_BUNDLE",
    "REQUESTS_CA_BUNDLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "DOTNET_STARTUP_HOOKS",
    "COR_ENABLE_PROFILING",
    "COR_PROFILER",
    "COR_PROFILER_PATH",
    "PB_MASTER_KEY",
];

/// Name prefixes refused (compared without regard to case).
pub const DENIED_PREFIXES: &[&str] = &[
    "LD_",
    "DYLD_",
    "PYTHON",
    "PERL5",
    "LUA_",
    "CORECLR_",
    "BASH_FUNC_",
    "MALLOC_",
    "STRONGROOM_",
];

/// Whether a secret named `name` is refused as a variable of the child.
pub fn is_denied(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    DENIED_NAMES.contains(&upper.as_str())
        || DENIED_PREFIXES
            .iter()
            .any(|prefix| upper.starts_with(prefix))
}

/// Whether `name` is Strongroom's own configuration, never passed on and never allowed.
pub fn is_own_configuration(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    upper.starts_with("STRONGROOM_") || upper == "PB_MASTER_KEY"
}

/// The names among `names` that are refused and not in `allowed`, in order.
pub fn refused<'a>(names: impl IntoIterator<Item = &'a str>, allowed: &[String]) -> Vec<&'a str> {
    names
        .into_iter()
        .filter(|name| {
            is_denied(name)
                && (is_own_configuration(name) || !allowed.iter().any(|a| a.as_str() == *name))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_denylist_catches_loaders_shells_interpreters_and_our_own_variables() {
        for name in [
            "LD_PRELOAD",
            "ld_library_path",
            "DYLD_INSERT_LIBRARIES",
            "PATH",
            "Path",
            "IFS",
            "ENV",
            "BASH_ENV",
            "NODE_OPTIONS",
            "PYTHONPATH",
            "PYTHONSTARTUP",
            "PERL5OPT",
            "RUBYOPT",
            "JAVA_TOOL_OPTIONS",
            "STRONGROOM_MASTER_KEY",
            "https_proxy",
        ] {
            assert!(is_denied(name), "{name}");
        }
        for name in [
            "DATABASE_URL",
            "API_KEY",
            "PATHS_FILE",
            "MY_PATH",
            "HOMEPAGE",
        ] {
            assert!(!is_denied(name), "{name}");
        }
    }

    #[test]
    fn allowing_is_one_by_one_and_never_for_our_own_variables() {
        let allowed = vec!["PATH".to_owned(), "STRONGROOM_KEYS".to_owned()];
        assert_eq!(
            refused(
                ["PATH", "LD_PRELOAD", "STRONGROOM_KEYS", "API_KEY"],
                &allowed
            ),
            ["LD_PRELOAD", "STRONGROOM_KEYS"]
        );
    }
}
