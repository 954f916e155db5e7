# bash completion for flashrack, the operator CLI: its verbs, their options and the
# global options, as 'flashrack --help' and 'flashrack VERB --help' list them
# (tests/integration/test_docs.py checks that they agree).
_flashrack()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
    local global="--controller --output --timeout --help"
    case $prev in
        -o|--output) COMPREPLY=($(compgen -W "table json csv pdf" -- "$cur")); return ;;
        -C|--controller|--timeout|--ecid|--agent|--port|--count|--sha256|--max-attempts|--name|--key|--interval|--frames|--model|--role|--keys-dir|--state)
            return ;;
        --firmware|--catalog|--pubkey|--out) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    esac
    local verb= i
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            -C|-o|--controller|--output|--timeout) ((i++)) ;;
            -*) ;;
            *) verb=${COMP_WORDS[i]}; break ;;
        esac
    done
    local words
    case $verb in
        "") words="submit status watch unit units ports firmware moves agents cancel report keys record $global --version" ;;
        submit) words="--firmware --ecid --agent --port --count --sha256 --update --max-attempts --name --standing --same-port --key --queue --wait" ;;
        watch) words="--once --interval --frames" ;;
        report|cancel) words="--ecid" ;;
        ports) words="clear --state --quarantined" ;;
        units) words="release --state --model" ;;
        firmware) words="list show refresh inspect resolve --model --catalog --firmware" ;;
        record) words="verify pubkey --out --pubkey --keys-dir" ;;
        keys) words="gen authorize revoke list --agent --operator --role --force --record" ;;
        *) words="" ;;
    esac
    [ -n "$verb" ] && words="$words $global"
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -F _flashrack flashrack
