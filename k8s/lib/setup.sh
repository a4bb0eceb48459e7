# shellcheck shell=bash
# What the k8s/setup-*.sh scripts share: their error exit, their --help, and the dry-run/run wrapper that
# prints each gcloud/kubectl command as a runnable script (--dry-run) or runs it.
#
# Sourced, not run. Before sourcing set SETUP_PROG (the name errors start with); the scripts keep their
# --dry-run flag in DRY_RUN (true or false), which setup_run and setup_note read.

# setup_die MESSAGE...
#   Print "SETUP_PROG: MESSAGE" to stderr and exit 64 (a usage error).
#   Outputs: the message on stderr.
#   Returns: never; exits 64.
setup_die() {
  printf '%s: %s\n' "${SETUP_PROG:-setup}" "$*" >&2
  exit 64
}

# setup_usage [FILE]
#   Print FILE's leading comment block (default: the running script, $0) without its "# ": the lines after
#   the shebang up to the first line that is not a comment.
#   Outputs: the usage text on stdout.
#   Returns: 0.
setup_usage() {
  sed -n '2,${/^#/!q;s/^# \{0,1\}//;p}' "${1:-$0}"
}

# setup_quote WORD
#   Print WORD as one shell word: bare when it holds only safe characters, else single-quoted (a ' inside
#   becomes '\'').
#   Outputs: the word on stdout, without a newline.
#   Returns: 0.
setup_quote() {
  if [[ "$1" =~ ^[A-Za-z0-9_./:=@,+%-]+$ ]]; then
    printf '%s' "$1"
  else
    printf "'%s'" "${1//\'/\'\\\'\'}"
  fi
}

# setup_words WORD...
#   Print the WORDs as one shell command line (each quoted by setup_quote).
#   Outputs: the line on stdout, without a newline.
#   Returns: 0.
setup_words() {
  local words=() arg
  for arg in "$@"; do
    words+=("$(setup_quote "$arg")")
  done
  printf '%s' "${words[*]}"
}

# setup_run CMD...
#   With DRY_RUN=true print CMD as a shell command line and run nothing; otherwise echo it to stderr after
#   "+ " and run it.
#   Outputs: the command line on stdout when dry-running, on stderr when running.
#   Returns: CMD's status, 0 when dry-running.
setup_run() {
  if [[ "${DRY_RUN:-false}" == true ]]; then
    printf '%s\n' "$(setup_words "$@")"
    return 0
  fi
  printf '+ %s\n' "$(setup_words "$@")" >&2
  "$@"
}

# setup_run_unless CHECK_LINE CMD...
#   For the dry run of a create: print "CHECK_LINE >/dev/null 2>&1 || CMD", so the printed script creates
#   only what does not exist yet (a bare create would stop a re-run with AlreadyExists). CHECK_LINE is a
#   shell command line (already quoted, e.g. by setup_words); it succeeds when the thing exists.
#   Outputs: the guarded command line on stdout.
#   Returns: 0.
setup_run_unless() {
  local check="$1"
  shift
  printf '%s >/dev/null 2>&1 || %s\n' "$check" "$(setup_words "$@")"
}

# setup_note TEXT...
#   Print TEXT as a comment line, so that a dry run's output stays a runnable script.
#   Outputs: "# TEXT" on stdout.
#   Returns: 0.
setup_note() {
  printf '# %s\n' "$*"
}
