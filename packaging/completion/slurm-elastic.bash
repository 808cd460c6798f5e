# bash completion for slurm-elastic (installed as
# /usr/share/bash-completion/completions/slurm-elastic).
#
# Commands and flags are read from the installed binary's own --help, so the
# completion follows the binary after an upgrade and never lists a command
# that does not exist.

_slurm_elastic() {
	local cur prev cmd words_before i line section
	cur=${COMP_WORDS[COMP_CWORD]}
	prev=${COMP_WORDS[COMP_CWORD-1]}
	cmd=${COMP_WORDS[0]}

	case $prev in
	--config | -c)
		COMPREPLY=($(compgen -f -- "$cur"))
		return 0
		;;
	esac

	# The (sub)commands typed so far, without flags and their values.
	words_before=()
	for ((i = 1; i < COMP_CWORD; i++)); do
		case ${COMP_WORDS[i]} in
		--config | -c) ((i++)) ;;
		-*) ;;
		*) words_before+=("${COMP_WORDS[i]}") ;;
		esac
	done

	local -a commands=() flags=()
	section=""
	while IFS= read -r line; do
		case $line in
		COMMANDS:*) section=commands; continue ;;
		*OPTIONS:*) section=flags; continue ;;
		[A-Z]*:*) section=""; continue ;;
		esac
		[[ $line =~ ^[[:space:]]+([^[:space:]].*)$ ]] || continue
		line=${BASH_REMATCH[1]}
		case $section in
		commands)
			# "conf, c   usage" -> conf c
			line=${line%%  *}
			line=${line//,/ }
			commands+=($line)
			;;
		flags)
			# "--config value, -c value  usage" -> --config -c
			line=${line%%  *}
			for i in ${line//,/ }; do
				[[ $i == -* ]] && flags+=("$i")
			done
			;;
		esac
	done < <("$cmd" "${words_before[@]}" --help 2>/dev/null)

	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "${flags[*]}" -- "$cur"))
	else
		COMPREPLY=($(compgen -W "${commands[*]}" -- "$cur"))
	fi
	return 0
}

complete -o default -F _slurm_elastic slurm-elastic
