#!/usr/bin/env bash
# Regenerates the GnuPG-made key fixtures in gnupg/ (run by hand; the committed files are what
# the tests use). Needs GnuPG 2.2+. Keys have no passphrase and do not expire.
set -euo pipefail
cd "$(dirname "$0")"
export GNUPGHOME=$(mktemp -d)
trap 'rm -rf "$GNUPGHOME"' EXIT
gen() { # name algo usage
  gpg --batch --pinentry-mode loopback --passphrase '' --quick-gen-key "$1" "$2" "$3" never
}
gen "GnuPG RSA <rsa@gnupg.test>" rsa3072 sign,cert
fpr=$(gpg --batch --with-colons --list-keys rsa@gnupg.test | awk -F: '/^fpr/{print $10; exit}')
gpg --batch --pinentry-mode loopback --passphrase '' --quick-add-key "$fpr" rsa3072 encr never
gpg --armor --export rsa@gnupg.test > gnupg/rsa.pub.asc
gpg --batch --pinentry-mode loopback --passphrase '' --armor --export-secret-keys rsa@gnupg.test > gnupg/rsa.sec.asc
gen "GnuPG Ed25519 <ed25519@gnupg.test>" ed25519 sign,cert
fpr=$(gpg --batch --with-colons --list-keys ed25519@gnupg.test | awk -F: '/^fpr/{print $10; exit}')
gpg --batch --pinentry-mode loopback --passphrase '' --quick-add-key "$fpr" cv25519 encr never
gpg --armor --export ed25519@gnupg.test > gnupg/ed25519.pub.asc
gpg --batch --pinentry-mode loopback --passphrase '' --armor --export-secret-keys ed25519@gnupg.test > gnupg/ed25519.sec.asc
# A passphrase-protected one, to test passphrases on GnuPG's own key encryption.
gpg --batch --pinentry-mode loopback --passphrase 'muttr' --quick-gen-key "GnuPG Protected <protected@gnupg.test>" ed25519 sign,cert never
fpr=$(gpg --batch --with-colons --list-keys protected@gnupg.test | awk -F: '/^fpr/{print $10; exit}')
gpg --batch --pinentry-mode loopback --passphrase 'muttr' --quick-add-key "$fpr" cv25519 encr never
gpg --batch --pinentry-mode loopback --passphrase 'muttr' --armor --export-secret-keys protected@gnupg.test > gnupg/protected.sec.asc
gpg --version | head -1 > gnupg/GENERATED-BY
