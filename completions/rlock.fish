# SPDX-License-Identifier: MIT
# fish completion for rlock(1): commands, options, duration hints and lock names from Redis.
#
# Installed as share/fish/vendor_completions.d/rlock.fish. Lock names come from
# `rlock status --json` against the Redis the command line names, with a short timeout; nothing
# when it is not reachable. The option lists are checked against `rlock CMD --help` by
# tests/examples/drift_guard.sh.

set -l rlock_commands exec acquire release renew wait status log config help
set -l rlock_durations 250ms 1s 5s 10s 30s 1m 5m 10m 30m 1h 1h30m

# True before the job's "--" in `rlock exec NAME [options] -- COMMAND`.
function __rlock_before_dashes
    not contains -- -- (commandline -opc)
end

# True when the lock name is the next positional word of the current command.
function __rlock_wants_name
    set -l words (commandline -opc)
    set -e words[1]
    set -l seen_command 0
    set -l skip 0
    for word in $words
        if test $skip = 1
            set skip 0
            continue
        end
        switch $word
            case --
                return 1
            case --url --password --password-file --sentinel-password-file --prefix --connect-timeout --io-timeout --node-timeout --config --profile --ttl \
                --cacert --cacertdir --cert --key --tls-server-name --sni --tls-verify --tls-session-cache --events --metrics-textfile \
                -w --wait -E --conflict-exit-code -c --shell-command --lost-signal --grace \
                --max-hold --min-hold --token --token-file --owner-pid --min-replicas --min-replicas-timeout \
                --entries --limit
                set skip 1
            case -n
                if contains -- log $words
                    set skip 1
                end
            case '-*'
            case '*'
                if test $seen_command = 1
                    return 1 # the name is already there
                end
                set seen_command 1
        end
    end
    test $seen_command = 1
end

# Completes the words after exec's "--" as a command line of their own.
function __rlock_complete_job
    set -l words (commandline -opc) (commandline -ct)
    set -l i (contains -i -- -- $words)
    __fish_complete_subcommand --commandline $words[(math $i + 1)..-1]
end

# Prints the held lock names, one a line, from `rlock status --json` ("name" strings, unescaped).
function __rlock_lock_names
    set -l conn
    set -l words (commandline -opc)
    set -l count (count $words)
    for i in (seq 2 $count)
        switch $words[$i]
            case --url --prefix --password-file
                if test $i -lt $count
                    set -a conn $words[$i] $words[(math $i + 1)]
                end
            case '--url=*' '--prefix=*' '--password-file=*'
                set -a conn $words[$i]
            case --
                break
        end
    end
    command rlock $conn --connect-timeout 300ms --io-timeout 1s status --json 2>/dev/null |
        awk '{
          s = $0
          while ((i = index(s, "{\"name\":\"")) > 0) {
            s = substr(s, i + 9)
            if (!match(s, /^([^"\\\\]|\\\\.)*/)) break
            name = substr(s, 1, RLENGTH); s = substr(s, RLENGTH + 1)
            gsub(/\\\\\\\\/, "\001", name); gsub(/\\\\"/, "\"", name); gsub(/\001/, "\\\\", name)
            print name
          }
        }'
end

complete -c rlock -f

# Global options, before or after the command.
complete -c rlock -n __rlock_before_dashes -s h -l help -d 'Print help and exit'
complete -c rlock -n __rlock_before_dashes -l version -d 'Print the version and exit'
complete -c rlock -n __rlock_before_dashes -l url -x -a 'redis:// rediss:// unix:// redis+sentinel:// redis+cluster://' -d 'Redis URL (env RLOCK_URL, then REDIS_URL)'
complete -c rlock -n __rlock_before_dashes -l password -x -d 'Redis password (visible in ps; prefer RLOCK_PASSWORD)'
complete -c rlock -n __rlock_before_dashes -l password-file -r -F -d 'Read the Redis password from FILE'
complete -c rlock -n __rlock_before_dashes -l sentinel-password-file -r -F -d "Read the sentinels' password from FILE"
complete -c rlock -n __rlock_before_dashes -l prefix -x -d 'Key prefix (env RLOCK_PREFIX; default rlock:)'
complete -c rlock -n __rlock_before_dashes -l connect-timeout -x -a "$rlock_durations" -d 'Give up connecting after DURATION'
complete -c rlock -n __rlock_before_dashes -l io-timeout -x -a "$rlock_durations" -d 'Give up on a Redis reply after DURATION'
complete -c rlock -n __rlock_before_dashes -l node-timeout -x -a "$rlock_durations" -d 'Quorum: wait at most DURATION for one node'
complete -c rlock -n __rlock_before_dashes -l config -r -F -d 'Read settings from FILE (env RLOCK_CONFIG)'
complete -c rlock -n __rlock_before_dashes -l profile -x -d 'Use the config file profile NAME (env RLOCK_PROFILE)'
complete -c rlock -n __rlock_before_dashes -l tls -d 'Use TLS with a redis:// URL'
complete -c rlock -n __rlock_before_dashes -l cacert -r -F -d 'Verify the server against the CAs in FILE'
complete -c rlock -n __rlock_before_dashes -l cacertdir -x -a '(__fish_complete_directories)' -d 'Verify against the hashed CA directory DIR'
complete -c rlock -n __rlock_before_dashes -l cert -r -F -d 'TLS client certificate'
complete -c rlock -n __rlock_before_dashes -l key -r -F -d 'Private key of the client certificate'
complete -c rlock -n __rlock_before_dashes -l tls-server-name -x -d 'Verify and send this name instead of the host'
complete -c rlock -n __rlock_before_dashes -l sni -x -d 'Verify and send this name instead of the host'
complete -c rlock -n __rlock_before_dashes -l tls-verify -x -a 'full ca none' -d 'What to verify of the certificate'
complete -c rlock -n __rlock_before_dashes -l insecure -d 'Do not verify the server certificate'
complete -c rlock -n __rlock_before_dashes -l tls-session-cache -x -a 'yes no' -d 'Resume TLS sessions from the private cache'
complete -c rlock -n __rlock_before_dashes -l audit -d "Append each acquisition and release to the lock's audit log (env RLOCK_AUDIT)"
complete -c rlock -n __rlock_before_dashes -l events -r -F -a '-' -d 'Append one JSON line per lock event to FILE, or stdout for -'
complete -c rlock -n __rlock_before_dashes -l metrics-textfile -r -F -d 'Replace FILE with Prometheus metrics of the run at exit'
complete -c rlock -n __rlock_before_dashes -s v -l verbose -d 'Say what rlock does on stderr'
complete -c rlock -n __rlock_before_dashes -s q -l quiet -d 'Print nothing but errors'

# Commands.
set -l no_command "not __fish_seen_subcommand_from $rlock_commands"
complete -c rlock -n $no_command -a exec -d 'Run a command while holding the lock'
complete -c rlock -n $no_command -a acquire -d 'Take a lock and print its token'
complete -c rlock -n $no_command -a release -d 'Release a lock taken with acquire'
complete -c rlock -n $no_command -a renew -d 'Extend a lease taken with acquire --lease'
complete -c rlock -n $no_command -a wait -d 'Wait until a lock is free, without taking it'
complete -c rlock -n $no_command -a status -d 'Show who holds a lock, or list every held lock'
complete -c rlock -n $no_command -a log -d "Print a lock's audit log (see --audit)"
complete -c rlock -n $no_command -a config -d 'Show the effective settings and where each came from'
complete -c rlock -n $no_command -a help -d 'Show the help of a command'

# The lock name: the first word after the command.
complete -c rlock -n "__fish_seen_subcommand_from exec acquire release renew wait status log; and __rlock_wants_name" -a '(__rlock_lock_names)' -d 'Lock'
complete -c rlock -n "__fish_seen_subcommand_from config; and __rlock_wants_name" -a show -d 'Print each effective setting and its source'
complete -c rlock -n "__fish_seen_subcommand_from help; and __rlock_wants_name" -a 'exec acquire release renew wait status log config' -d 'Command'

# exec and acquire: taking the lock.
set -l take "__fish_seen_subcommand_from exec acquire; and __rlock_before_dashes"
complete -c rlock -n $take -l ttl -x -a "$rlock_durations" -d 'Lease length, renewed every TTL/3 (default 30s)'
complete -c rlock -n $take -s w -l wait -x -a "$rlock_durations" -d 'Wait at most DURATION for the lock'
complete -c rlock -n $take -s n -l no-wait -d 'Fail at once if the lock is busy'
complete -c rlock -n $take -s E -l conflict-exit-code -x -a '0 75' -d 'Exit status when busy (default 75)'
complete -c rlock -n $take -l limit -x -a '2 3 4' -d 'A semaphore: at most N holders at once'
complete -c rlock -n $take -l shared -d 'A shared (read) lock: readers share, a plain acquire is exclusive'

# exec.
set -l exec_opts "__fish_seen_subcommand_from exec; and __rlock_before_dashes"
complete -c rlock -n $exec_opts -s c -l shell-command -x -d 'Run STRING with /bin/sh -c'
complete -c rlock -n $exec_opts -l lost-signal -x -a 'TERM INT HUP QUIT USR1 USR2 KILL' -d 'Signal for the job when the lock is lost (default TERM)'
complete -c rlock -n $exec_opts -l grace -x -a "$rlock_durations" -d 'Time between that signal and SIGKILL (default 10s)'
complete -c rlock -n $exec_opts -l max-hold -x -a "$rlock_durations" -d 'Stop the job after DURATION; exit 124'
complete -c rlock -n $exec_opts -l min-hold -x -a "$rlock_durations" -d 'Keep the lock at least DURATION'
complete -c rlock -n $exec_opts -l token -x -d 'Adopt the lease this token holds'
complete -c rlock -n $exec_opts -l token-file -r -F -d 'Adopt the lease whose token is in FILE'
complete -c rlock -n $exec_opts -l adopt -d 'Adopt the lease whose token is in $RLOCK_TOKEN_<NAME> or $RLOCK_TOKEN'
complete -c rlock -n $exec_opts -l release -d 'Release the adopted lease when the job ends'
# After "--": the job's command line, completed as a command of its own.
complete -c rlock -n '__fish_seen_subcommand_from exec; and not __rlock_before_dashes' -x -a '(__rlock_complete_job)'

# acquire.
set -l acquire_opts '__fish_seen_subcommand_from acquire'
complete -c rlock -n $acquire_opts -l lease -d 'No keeper: the lock lives for --ttl unless renewed'
complete -c rlock -n $acquire_opts -l export -d 'Print export lines (RLOCK_TOKEN, RLOCK_TOKEN_<NAME>, RLOCK_FENCE, ...) for eval'
complete -c rlock -n $acquire_opts -l json -d 'Print one JSON line: name, token, fence, ttl_ms, keeper_pid'
complete -c rlock -n $acquire_opts -l token-file -r -F -d 'Also write the token to FILE and the fence to FILE.fence (mode 0600)'
complete -c rlock -n $acquire_opts -l owner-pid -x -a '(__fish_complete_pids)' -d 'Hold the lock while process PID lives'

# release and renew: the token.
set -l token_opts '__fish_seen_subcommand_from release renew'
complete -c rlock -n $token_opts -l token -x -d 'The token acquire printed'
complete -c rlock -n $token_opts -l token-file -r -F -d 'Read the token from FILE'
complete -c rlock -n '__fish_seen_subcommand_from release' -l force -d 'Break the lock whoever holds it'
complete -c rlock -n '__fish_seen_subcommand_from release' -l expect-token -x -d 'With --force: break it only while TOKEN holds it'
complete -c rlock -n '__fish_seen_subcommand_from release' -l expect-holder -x -d 'With --force: break it only while HOST:PID holds it'
complete -c rlock -n '__fish_seen_subcommand_from renew' -l ttl -x -a "$rlock_durations" -d 'The new lease length from now (default 30s)'

# exec, acquire, release and renew: replicas that must acknowledge each write.
set -l writes "__fish_seen_subcommand_from exec acquire release renew; and __rlock_before_dashes"
complete -c rlock -n $writes -l min-replicas -x -a '0 1 2' -d 'Replicas that must acknowledge each write of the lock (default 0)'
complete -c rlock -n $writes -l min-replicas-timeout -x -a "$rlock_durations" -d 'How long each WAIT for those replicas waits'

# wait.
complete -c rlock -n '__fish_seen_subcommand_from wait' -s w -l wait -x -a "$rlock_durations" -d 'Wait at most DURATION (default: forever; 0 = look once)'
complete -c rlock -n '__fish_seen_subcommand_from wait' -s E -l conflict-exit-code -x -a '0 75' -d 'Exit status when the wait runs out (default 75)'

# status.
complete -c rlock -n '__fish_seen_subcommand_from status config' -l json -d 'Print one JSON document'
complete -c rlock -n '__fish_seen_subcommand_from status' -l match -x -d 'Only the locks whose names match GLOB'
complete -c rlock -n '__fish_seen_subcommand_from status' -l host -x -a '(__fish_print_hostnames)' -d 'Only the locks held from host H'
complete -c rlock -n '__fish_seen_subcommand_from status' -l older-than -x -a "$rlock_durations" -d 'Only the locks held for at least DURATION'
complete -c rlock -n '__fish_seen_subcommand_from status' -l format -x -d 'Print each held lock as TEMPLATE ({name} {host} {pid} ...)'

# log.
complete -c rlock -n '__fish_seen_subcommand_from log' -s n -l entries -x -a '10 20 100 1000' -d 'Print the newest N entries (default 20)'
complete -c rlock -n '__fish_seen_subcommand_from log' -l json -d 'Print one JSON object per entry, one a line'
