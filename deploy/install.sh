#!/usr/bin/env bash
# Installs (or uninstalls) the fleetwatch agent or aggregator as a systemd
# service: the binary, its config (never overwriting an existing one) and its
# unit, then enables and (re)starts it. Run `install.sh --help`.
set -euo pipefail

readonly PROG=${0##*/}
DEPLOY_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
readonly DEPLOY_DIR

usage() {
    cat <<EOF
Usage: $PROG (--agent | --aggregator) [options]

Installs a built fleetwatch binary as a hardened systemd service:
  BIN      -> ROOT/usr/local/bin/fleetwatch-ROLE                 (mode 0755)
  config   -> ROOT/etc/fleetwatch/ROLE.toml  from ROLE.example.toml,
              only if that file does not exist yet               (mode 0644)
  unit     -> ROOT/etc/systemd/system/fleetwatch-ROLE.service    (mode 0644)
then, when ROOT is /, runs systemctl daemon-reload, enable and restart.

  --agent            install the agent (one per monitored host)
  --aggregator       install the aggregator (one per fleet)
  --uninstall        stop and disable the service, remove its binary and
                     unit; keep its config and its data (/var/lib/fleetwatch)
  --bin PATH         the built binary (default: target/release/fleetwatch-ROLE
                     of the source tree this script is in)
  --token-file FILE  (agent) the agent token, as the aggregator printed it or
                     `fleetwatch-aggregator token add` made it; installed as
                     ROOT/etc/fleetwatch/agent.token (mode 0600), replacing
                     the one there
  --root DIR         install under DIR instead of / (a DESTDIR-style staging
                     root; DIR must exist); systemctl is not run then
  --no-enable        do not run systemctl (it is also skipped when systemctl
                     or a running systemd is missing)
  -h, --help         show this help

The unit and example config are read from the directory of this script
($DEPLOY_DIR). Exit status: 0 done, 1 failure, 2 bad arguments.
EOF
}

die() {
    printf '%s: error: %s\n' "$PROG" "$*" >&2
    exit 1
}

bad_usage() {
    printf '%s: error: %s\n\n' "$PROG" "$*" >&2
    usage >&2
    exit 2
}

say() {
    printf '%s\n' "$*"
}

role=""
uninstall=0
bin=""
root="/"
enable=1
token_file=""


set_role() {
    if [[ -n $role && $role != "$1" ]]; then
        bad_usage "--agent and --aggregator are exclusive: install one at a time"
    fi
    role=$1
}

while (($# > 0)); do
    case $1 in
        --agent) set_role agent ;;
        --aggregator) set_role aggregator ;;
        --uninstall) uninstall=1 ;;
        --no-enable) enable=0 ;;
        -h | --help)
            usage
            exit 0
            ;;
        --bin | --root | --token-file)
            if (($# < 2)) || [[ -z $2 ]]; then
                bad_usage "$1 needs a value"
            fi
            case $1 in
                --bin) bin=$2 ;;
                --root) root=$2 ;;
                *) token_file=$2 ;;
            esac
            shift
            ;;
        --bin=*) bin=${1#--bin=} ;;
        --root=*) root=${1#--root=} ;;
        --token-file=*) token_file=${1#--token-file=} ;;
        *) bad_usage "unknown argument: $1" ;;
    esac
    shift
done

[[ -n $role ]] || bad_usage "say what to install: --agent or --aggregator"
[[ -n $root ]] || bad_usage "--root needs a value"
[[ $uninstall == 0 || -z $bin ]] || bad_usage "--bin makes no sense with --uninstall"
[[ -z $token_file || $role == agent ]] || bad_usage "--token-file is for --agent"
[[ -z $token_file || $uninstall == 0 ]] || bad_usage "--token-file makes no sense with --uninstall"

name="fleetwatch-$role"
unit_src="$DEPLOY_DIR/$name.service"
config_src="$DEPLOY_DIR/$role.example.toml"

[[ -d $root ]] || die "--root $root: no such directory"
root=$(cd -- "$root" && pwd)
# Paths are "$prefix/usr/...": an empty prefix for the real root.
prefix=${root%/}

bin_dst="$prefix/usr/local/bin/$name"
config_dir="$prefix/etc/fleetwatch"
config_dst="$config_dir/$role.toml"
token_dst="$config_dir/agent.token"
unit_dst="$prefix/etc/systemd/system/$name.service"

# Whether to run systemctl, and if not, why.
skip_reason=""
if ((enable == 0)); then
    skip_reason="--no-enable was given"
elif [[ -n $prefix ]]; then
    skip_reason="--root is $root, not /"
elif ! command -v systemctl >/dev/null 2>&1; then
    skip_reason="systemctl is not installed"
elif [[ ! -d /run/systemd/system ]]; then
    skip_reason="systemd is not running on this machine"
fi

if [[ -z $prefix && $EUID -ne 0 ]]; then
    die "installing into / needs root: run it with sudo (or use --root DIR)"
fi

# Copies $1 to $2 with mode $3 through a temporary file in the same
# directory, so that a running binary or a reader never sees half a file.
put() {
    local src=$1 dst=$2 mode=$3 tmp
    mkdir -p -- "$(dirname -- "$dst")"
    tmp=$(mktemp -- "$dst.XXXXXX")
    if ! cp -- "$src" "$tmp" || ! chmod "$mode" "$tmp" || ! mv -f -- "$tmp" "$dst"; then
        rm -f -- "$tmp"
        die "cannot install $dst"
    fi
}

do_install() {
    [[ -n $bin ]] || bin="$DEPLOY_DIR/../target/release/$name"
    if [[ ! -e $bin ]]; then
        die "binary $bin not found: build it first (cargo build --release -p $name) or pass --bin PATH"
    fi
    [[ -f $bin ]] || die "binary $bin is not a regular file"
    [[ -r $bin ]] || die "binary $bin is not readable"
    [[ -f $unit_src ]] || die "$unit_src not found: keep install.sh inside the deploy/ directory"
    [[ -f $config_src ]] || die "$config_src not found: keep install.sh inside the deploy/ directory"

    put "$bin" "$bin_dst" 0755
    say "installed $bin_dst"

    mkdir -p -- "$config_dir"
    chmod 0755 -- "$config_dir"
    if [[ -e $config_dst || -L $config_dst ]]; then
        say "kept the existing config $config_dst (not overwritten)"
    else
        put "$config_src" "$config_dst" 0644
        say "installed $config_dst from $role.example.toml: edit it for this host"
    fi

    if [[ -n $token_file ]]; then
        [[ -f $token_file && -r $token_file ]] || die "--token-file $token_file: not a readable file"
        grep -q '^[[:space:]]*fwa_[[:graph:]]\{32,\}[[:space:]]*$' -- "$token_file" ||
            die "--token-file $token_file does not hold an agent token (fwa_...)"
        put "$token_file" "$token_dst" 0600
        say "installed the agent token as $token_dst (mode 0600)"
    elif [[ $role == agent && ! -s $token_dst ]]; then
        say "no agent token yet: put it in $token_dst (mode 0600) or pass --token-file;" \
            "the aggregator logs an enrollment command on start-up"
    fi

    put "$unit_src" "$unit_dst" 0644
    say "installed $unit_dst"

    if [[ -n $skip_reason ]]; then
        say "not running systemctl: $skip_reason"
        say "on the target machine: systemctl daemon-reload && systemctl enable --now $name"
        return
    fi
    systemctl daemon-reload
    systemctl enable "$name.service"
    # restart, not start: an upgrade must run the new binary.
    systemctl restart "$name.service"
    say "enabled and started $name; see: systemctl status $name; journalctl -u $name"
    if [[ ! -s $config_dst ]] || cmp -s -- "$config_src" "$config_dst"; then
        say "the config is the example one: edit $config_dst, then systemctl restart $name"
    fi
}

do_uninstall() {
    if [[ -n $skip_reason ]]; then
        say "not running systemctl: $skip_reason"
    elif systemctl cat "$name.service" >/dev/null 2>&1; then
        systemctl disable --now "$name.service"
        say "stopped and disabled $name"
    fi
    local removed=0 f
    for f in "$bin_dst" "$unit_dst"; do
        if [[ -e $f || -L $f ]]; then
            rm -f -- "$f"
            say "removed $f"
            removed=1
        fi
    done
    ((removed)) || say "$name was not installed under $root"
    if [[ -z $skip_reason ]]; then
        systemctl daemon-reload
    fi
    if [[ -e $config_dst ]]; then
        say "kept the config $config_dst"
    fi
    if [[ $role == agent && -e $token_dst ]]; then
        say "kept the agent token $token_dst"
    fi
    if [[ $role == aggregator ]]; then
        say "kept the data in $prefix/var/lib/fleetwatch (rm -rf $prefix/var/lib/private/fleetwatch $prefix/var/lib/fleetwatch to delete it)"
    fi
}

if ((uninstall)); then
    do_uninstall
else
    do_install
fi
