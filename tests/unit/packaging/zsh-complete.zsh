# What zsh's completion system lists for a command line, asked of a real interactive zsh on a
# pseudo terminal (zsh/zpty), with only the given folder's completions added to $fpath:
#
#   zsh -f zsh-complete.zsh FOLDER 'abgleich cleanup config.yaml '
#
# Prints the terminal output (escape sequences included) after completion was asked for.
zmodload zsh/zpty || exit 1
zpty shell zsh -f -i
zpty -w shell "PROMPT= ; fpath=(${(q)1} \$fpath); autoload -U compinit; compinit -u -D"
# list every match at once, no menu, no pager
zpty -w shell 'zstyle ":completion:*" menu no; zstyle ":completion:*" list-prompt ""; LISTMAX=100000'
zpty -w shell 'zle -C list-them list-choices _main_complete; bindkey "^T" list-them'
zpty -w shell 'print READY'
zpty -r shell line '*READY*'
zpty -r shell line '*READY*'
zpty -n -w shell "$2"$'\x14'
output=
quiet=0
# read until the terminal has been quiet for half a second (at most 10 s)
for i in {1..100}; do
  sleep 0.1
  if zpty -r -t shell chunk; then
    output+=$chunk
    while zpty -r -t shell chunk; do output+=$chunk; done
    quiet=0
  elif [[ -n $output ]] && (( ++quiet >= 5 )); then
    break
  fi
done
zpty -d shell
print -r -- "$output"
