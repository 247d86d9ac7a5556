package cli

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

var shells = []string{"bash", "zsh", "fish"}

func runCompletion(env Env, args []string) int {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
		fmt.Fprintln(env.Stdout, "Usage: ipsync completion bash|zsh|fish\nPrint a completion script for the shell. For example:")
		fmt.Fprintln(env.Stdout, "  bash: source <(ipsync completion bash)    (or save it in /etc/bash_completion.d/ipsync)")
		fmt.Fprintln(env.Stdout, "  zsh:  ipsync completion zsh > \"${fpath[1]}/_ipsync\"    (or source <(ipsync completion zsh))")
		fmt.Fprintln(env.Stdout, "  fish: ipsync completion fish > ~/.config/fish/completions/ipsync.fish")
		return exitOK
	}
	if len(args) != 1 {
		fmt.Fprintln(env.Stderr, "ipsync completion: name one shell: bash, zsh or fish")
		return exitError
	}
	cmds := completionCommands()
	switch args[0] {
	case "bash":
		writeBash(env.Stdout, cmds)
	case "zsh":
		writeZsh(env.Stdout, cmds)
	case "fish":
		writeFish(env.Stdout, cmds)
	default:
		fmt.Fprintf(env.Stderr, "ipsync completion: unknown shell %q%s; want bash, zsh or fish\n", args[0], didYouMean(args[0], shells, ""))
		return exitError
	}
	return exitOK
}

// completed is what completion knows of a command: its name, summary and flags.
type completed struct {
	name, summary string
	flags         []completedFlag
}

type completedFlag struct {
	name, usage string
	takesValue  bool
	file        bool // the value is a file path (--config)
}

// completionCommands learns every command's flags by running it with -h and keeping the flag set it makes:
// every command parses its flags before it does anything else, and -h ends it there.
func completionCommands() []completed {
	var out []completed
	for _, c := range commands() {
		cc := completed{name: c.name, summary: c.summary}
		if c.name != "completion" {
			var fs *flag.FlagSet
			env := Env{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) (string, bool) { return "", false },
				inspect: func(f *flag.FlagSet) { fs = f }}
			c.run(env, []string{"-h"})
			if fs != nil {
				fs.VisitAll(func(fl *flag.Flag) {
					b, isBool := fl.Value.(interface{ IsBoolFlag() bool })
					_, usage := flag.UnquoteUsage(fl)
					cc.flags = append(cc.flags, completedFlag{name: fl.Name, usage: usage,
						takesValue: !isBool || !b.IsBoolFlag(), file: fl.Name == "config"})
				})
			}
		}
		out = append(out, cc)
	}
	return append(out, completed{name: "help", summary: "this list, or a command's flags: ipsync help COMMAND"})
}

func names(cmds []completed) string {
	var n []string
	for _, c := range cmds {
		n = append(n, c.name)
	}
	return strings.Join(n, " ")
}

func writeBash(w io.Writer, cmds []completed) {
	fmt.Fprintf(w, `# bash completion for ipsync: source <(ipsync completion bash)
_ipsync() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"
    if [[ $COMP_CWORD -eq 1 ]]; then
        COMPREPLY=($(compgen -W %q -- "$cur"))
        return
    fi
    local flags="" valued=""
    case "${COMP_WORDS[1]}" in
`, names(cmds))
	for _, c := range cmds {
		var all, valued []string
		for _, f := range c.flags {
			all = append(all, "--"+f.name)
			if f.takesValue {
				valued = append(valued, "--"+f.name)
			}
		}
		switch {
		case c.name == "completion":
			fmt.Fprintf(w, "        completion) COMPREPLY=($(compgen -W %q -- \"$cur\")); return ;;\n", strings.Join(shells, " "))
		case c.name == "help":
			fmt.Fprintf(w, "        help) COMPREPLY=($(compgen -W %q -- \"$cur\")); return ;;\n", names(cmds))
		case len(all) > 0:
			fmt.Fprintf(w, "        %s) flags=%q; valued=%q ;;\n", c.name, strings.Join(all, " "), strings.Join(valued, " "))
		}
	}
	fmt.Fprint(w, `    esac
    if [[ "$prev" == --config ]]; then
        COMPREPLY=($(compgen -f -- "$cur"))
        return
    fi
    if [[ " $valued " == *" $prev "* ]]; then
        return # a value: nothing to offer
    fi
    COMPREPLY=($(compgen -W "$flags" -- "$cur"))
}
complete -F _ipsync ipsync
`)
}

// zshQuote makes a description safe inside a single-quoted zsh _arguments spec or _describe entry.
func zshQuote(s string) string {
	s, _, _ = strings.Cut(s, "; ")
	return strings.NewReplacer("'", "", "[", "(", "]", ")", ":", " -", "\\", "", "\n", " ").Replace(s)
}

func writeZsh(w io.Writer, cmds []completed) {
	fmt.Fprint(w, "#compdef ipsync\n# zsh completion for ipsync: ipsync completion zsh > \"${fpath[1]}/_ipsync\"\n_ipsync() {\n    local -a commands\n    commands=(\n")
	for _, c := range cmds {
		fmt.Fprintf(w, "        '%s:%s'\n", c.name, zshQuote(c.summary))
	}
	fmt.Fprint(w, "    )\n    if (( CURRENT == 2 )); then\n        _describe 'command' commands\n        return\n    fi\n    case $words[2] in\n")
	for _, c := range cmds {
		switch {
		case c.name == "completion":
			fmt.Fprintf(w, "        completion) _values 'shell' %s ;;\n", strings.Join(shells, " "))
		case c.name == "help":
			fmt.Fprint(w, "        help) _describe 'command' commands ;;\n")
		case len(c.flags) > 0:
			fmt.Fprintf(w, "        %s) _arguments", c.name)
			for _, f := range c.flags {
				spec := fmt.Sprintf("--%s[%s]", f.name, zshQuote(f.usage))
				switch {
				case f.file:
					spec += ":file:_files"
				case f.takesValue:
					spec += ":value: "
				}
				fmt.Fprintf(w, " \\\n            '%s'", spec)
			}
			fmt.Fprint(w, " ;;\n")
		}
	}
	fmt.Fprint(w, `    esac
}
if [[ "${zsh_eval_context[-1]}" == loadautofunc ]]; then
    _ipsync "$@"
else
    compdef _ipsync ipsync
fi
`)
}

// fishQuote makes s a single-quoted fish string.
func fishQuote(s string) string {
	s, _, _ = strings.Cut(s, "; ")
	return "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(s) + "'"
}

func writeFish(w io.Writer, cmds []completed) {
	fmt.Fprint(w, "# fish completion for ipsync: ipsync completion fish > ~/.config/fish/completions/ipsync.fish\ncomplete -c ipsync -f\n")
	for _, c := range cmds {
		fmt.Fprintf(w, "complete -c ipsync -n __fish_use_subcommand -a %s -d %s\n", c.name, fishQuote(c.summary))
	}
	for _, c := range cmds {
		cond := fishQuote("__fish_seen_subcommand_from " + c.name)
		switch c.name {
		case "completion":
			fmt.Fprintf(w, "complete -c ipsync -n %s -a %s\n", cond, fishQuote(strings.Join(shells, " ")))
		case "help":
			fmt.Fprintf(w, "complete -c ipsync -n %s -a %s\n", cond, fishQuote(names(cmds)))
		}
		for _, f := range c.flags {
			extra := ""
			if f.takesValue {
				extra = " -r"
			}
			if f.file {
				extra += " -F"
			}
			fmt.Fprintf(w, "complete -c ipsync -n %s -l %s%s -d %s\n", cond, f.name, extra, fishQuote(f.usage))
		}
	}
}
