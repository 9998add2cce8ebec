# SPDX-License-Identifier: MIT
# bash completion for rlock(1): commands, options, duration hints and lock names from Redis.
#
# Installed as share/bash-completion/completions/rlock. Lock names come from
# `rlock status --json` against the Redis the command line names (--url, --prefix,
# --password-file, else the environment), with a short timeout; nothing when it is not reachable.
# The option lists are checked against `rlock CMD --help` by tests/examples/drift_guard.sh.

_rlock_global_opts='-h --help --version --url --password --password-file --sentinel-password-file --prefix
  --connect-timeout --io-timeout --node-timeout --config --profile --tls --cacert --cacertdir --cert --key --tls-server-name --sni
  --tls-verify --insecure --tls-session-cache --audit --events --metrics-textfile -v --verbose -q --quiet'
_rlock_durations='250ms 1s 5s 10s 30s 1m 5m 10m 30m 1h'

# Prints the held lock names, one a line, from `rlock status --json` ("name" strings, unescaped).
_rlock_lock_names() {
  local -a conn=()
  local i word
  for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
    word=${COMP_WORDS[i]}
    case $word in
      --url | --prefix | --password-file) conn+=("$word" "${COMP_WORDS[i + 1]}") ;;
      --url=* | --prefix=* | --password-file=*) conn+=("$word") ;;
      --) break ;;
    esac
  done
  command rlock "${conn[@]}" --connect-timeout 300ms --io-timeout 1s status --json 2>/dev/null |
    awk '{
      s = $0
      while ((i = index(s, "{\"name\":\"")) > 0) {
        s = substr(s, i + 9)
        if (!match(s, /^([^"\\]|\\.)*/)) break
        name = substr(s, 1, RLENGTH); s = substr(s, RLENGTH + 1)
        gsub(/\\\\/, "\001", name); gsub(/\\"/, "\"", name); gsub(/\001/, "\\", name)
        print name
      }
    }'
}

# Prints the profile names of the configuration file rlock would read: --config on the command
# line, else $RLOCK_CONFIG, else the first of the user's and the system file that exists.
_rlock_profiles() {
  local file='' i
  for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
    case ${COMP_WORDS[i]} in
      --config) file=${COMP_WORDS[i + 1]} ;;
      --config=*) file=${COMP_WORDS[i]#--config=} ;;
    esac
  done
  if [[ -z $file ]]; then
    file=${RLOCK_CONFIG:-}
  fi
  if [[ -z $file ]]; then
    local user_file=${XDG_CONFIG_HOME:-$HOME/.config}/rlock/config
    if [[ -f $user_file ]]; then file=$user_file; else file=/etc/rlock/config; fi
  fi
  [[ -f $file && -r $file ]] || return
  sed -n -E 's/^[[:space:]]*\[[[:space:]]*profile[[:space:]]+([A-Za-z0-9._-]+)[[:space:]]*\].*/\1/p' "$file"
}

_rlock() {
  local cur prev words cword
  if declare -F _init_completion >/dev/null 2>&1; then
    _init_completion -n = || return
  else
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD - 1]}
    words=("${COMP_WORDS[@]}")
    cword=$COMP_CWORD
  fi

  # The subcommand, the lock name if given, and where a "--" ends rlock's own arguments.
  local command='' name_given='' i word skip=''
  for ((i = 1; i < cword; i++)); do
    word=${words[i]}
    if [[ -n $skip ]]; then
      skip=''
      continue
    fi
    case $word in
      --) if [[ $command == exec ]]; then
            # Complete the job's command line as a command of its own.
            if declare -F _command_offset >/dev/null 2>&1; then
              _command_offset $((i + 1))
            else
              mapfile -t COMPREPLY < <(compgen -c -- "$cur")
            fi
            return
          fi ;;
      --url | --password | --password-file | --sentinel-password-file | --prefix | --connect-timeout | --io-timeout | --node-timeout | --config | --profile | \
        --events | --metrics-textfile | --cacert | --cacertdir | --cert | --key | --tls-server-name | --sni | --tls-verify | --tls-session-cache | \
        --ttl | -w | --wait | -E | --conflict-exit-code | -c | --shell-command | --lost-signal | \
        --grace | --max-hold | --min-hold | --token | --token-file | --owner-pid | --min-replicas | \
        --min-replicas-timeout | --expect-token | --expect-holder | --match | --host | --older-than | --format | \
        --entries | --limit)
        skip=1 ;;
      -n) if [[ $command == log ]]; then skip=1; fi ;;
      -*) ;;
      *) if [[ -z $command ]]; then command=$word; else name_given=1; fi ;;
    esac
  done

  case $prev in
    --ttl | -w | --wait | --grace | --max-hold | --min-hold | --connect-timeout | --io-timeout | --node-timeout | \
      --min-replicas-timeout | --older-than)
      mapfile -t COMPREPLY < <(compgen -W "$_rlock_durations" -- "$cur")
      return ;;
    --lost-signal)
      mapfile -t COMPREPLY < <(compgen -W 'TERM INT HUP QUIT USR1 USR2 KILL' -- "$cur")
      return ;;
    --tls-verify)
      mapfile -t COMPREPLY < <(compgen -W 'full ca none' -- "$cur")
      return ;;
    --tls-session-cache)
      mapfile -t COMPREPLY < <(compgen -W 'yes no' -- "$cur")
      return ;;
    --cacert | --cert | --key)
      mapfile -t COMPREPLY < <(compgen -f -- "$cur")
      return ;;
    --cacertdir)
      mapfile -t COMPREPLY < <(compgen -d -- "$cur")
      return ;;
    -E | --conflict-exit-code)
      mapfile -t COMPREPLY < <(compgen -W '0 75' -- "$cur")
      return ;;
    --min-replicas)
      mapfile -t COMPREPLY < <(compgen -W '0 1 2' -- "$cur")
      return ;;
    --limit)
      mapfile -t COMPREPLY < <(compgen -W '2 3 4' -- "$cur")
      return ;;
    --url)
      mapfile -t COMPREPLY < <(compgen -W 'redis:// rediss:// unix://' -- "$cur")
      compopt -o nospace 2>/dev/null
      return ;;
    --password-file | --sentinel-password-file | --token-file | --config | --metrics-textfile)
      mapfile -t COMPREPLY < <(compgen -f -- "$cur")
      compopt -o filenames 2>/dev/null
      return ;;
    --events)
      mapfile -t COMPREPLY < <(compgen -W '-' -- "$cur"; compgen -f -- "$cur")
      compopt -o filenames 2>/dev/null
      return ;;
    --profile)
      mapfile -t COMPREPLY < <(compgen -W "$(_rlock_profiles)" -- "$cur")
      return ;;
    --owner-pid)
      mapfile -t COMPREPLY < <(compgen -W "$(command ps -axo pid= 2>/dev/null)" -- "$cur")
      return ;;
    --password | --prefix | --token | -c | --shell-command)
      return ;;
    -n | --entries)
      if [[ $command == log ]]; then
        mapfile -t COMPREPLY < <(compgen -W '10 20 100 1000' -- "$cur")
        return
      fi ;;
  esac

  local opts
  case $command in
    '')
      if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$_rlock_global_opts" -- "$cur")
      else
        mapfile -t COMPREPLY < <(compgen -W 'exec acquire release renew wait status log config help' -- "$cur")
      fi
      return ;;
    help)
      if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$_rlock_global_opts" -- "$cur")
      elif [[ -z $name_given ]]; then
        mapfile -t COMPREPLY < <(compgen -W 'exec acquire release renew wait status log config' -- "$cur")
      fi
      return ;;
    exec)
      opts='--ttl -w --wait -n --no-wait -E --conflict-exit-code --limit --shared -c --shell-command --lost-signal
        --grace --max-hold --min-hold --token --token-file --adopt --release --min-replicas
        --min-replicas-timeout --' ;;
    acquire)
      opts='--ttl -w --wait -n --no-wait -E --conflict-exit-code --limit --shared --lease --export --json --token-file
        --owner-pid --min-replicas --min-replicas-timeout' ;;
    release) opts='--token --token-file --force --expect-token --expect-holder --min-replicas --min-replicas-timeout' ;;
    renew) opts='--token --token-file --ttl --min-replicas --min-replicas-timeout' ;;
    wait) opts='-w --wait -E --conflict-exit-code' ;;
    status) opts='--json --match --host --older-than --format' ;;
    log) opts='-n --entries --json' ;;
    config)
      if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "--json $_rlock_global_opts" -- "$cur")
      elif [[ -z $name_given ]]; then
        mapfile -t COMPREPLY < <(compgen -W 'show' -- "$cur")
      fi
      return ;;
    *) return ;;
  esac

  if [[ $cur == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$opts $_rlock_global_opts" -- "$cur")
  elif [[ -z $name_given ]]; then
    local name
    COMPREPLY=()
    while IFS= read -r name; do
      [[ $name == "$cur"* ]] || continue
      if [[ $name == *[!A-Za-z0-9_.:/@%+,=-]* ]]; then
        printf -v name '%q' "$name"
      fi
      COMPREPLY+=("$name")
    done < <(_rlock_lock_names)
  fi
}

complete -F _rlock rlock
