#!/bin/sh
# Writes a shell program that prints the greeting with the builder's name filled in.
set -e
name=$1
printf '#!/bin/sh\n'
printf 'printf %s "%s"\n' "'$(cat greeting.txt)\n'" "$name"
printf 'echo "running as $(id -un) in $(pwd)"\n'
