// Package dlp finds secrets in the bodies an agent sends out through the
// egress (issue 13). It is a pure library: it reads bytes and returns
// findings; ext_proc body processing and the manifest decide what to scan and
// what to do about a finding.
//
// # What is detected
//
//   - Known secrets: the credential values the egress holds (slot values),
//     passed as config.Secret so a Config never prints them. Kind
//     "known-secret", named by slot, severity high.
//   - Canaries: planted fake credentials. Kind "canary", severity high: any
//     appearance means something read a file it should not have.
//   - Extra patterns: named literals (kind "pattern", in every encoding
//     below) and RE2 regular expressions (matched within a scan window).
//   - Well-known formats, each checked beyond its prefix to keep false
//     positives out: AWS access key ids (AKIA/ASIA and 16 base32 characters;
//     AWS's …EXAMPLE key skipped) and, within 256 bytes of one or 64 bytes
//     after an aws_secret_access_key-style key, 40-character mixed-case
//     secret keys; GitHub tokens (ghp_, gho_, ghu_, ghs_, ghr_ with their
//     CRC-32 checksum verified; github_pat_ by shape); OpenAI keys (sk-,
//     sk-proj-, sk-svcacct-, sk-admin-, by the "T3BlbkFJ" marker or length
//     and randomness); Anthropic keys (sk-ant-<type><2 digits>- and 80 or more
//     characters); Slack tokens (xoxb-, xoxp-, xoxa-, xoxr-, xoxs- with
//     numeric and random segments) and hooks.slack.com webhook URLs; PEM
//     private keys (the BEGIN line and at least 64 characters of body); JWTs
//     with a signature (three parts, the header JSON with an "alg" that is
//     not "none"; severity medium).
//
// # Encodings
//
// Literals are matched by one matcher built by New, together with their
// precomputed percent-encoded forms (query and path escaping, every byte as
// %XX in either case), JSON-escaped forms (with and without HTML escaping,
// "\/", every byte as \u00XX) and base64 forms (standard and URL-safe,
// padded or not, at each of the three alignments, as the part of the
// encoding that does not depend on neighbouring bytes). The format rules'
// prefixes are in the same matcher. For the formats, spans that look encoded
// are decoded and scanned again: the regions around JSON escapes that decode
// to a token's characters ("\u0041", "\/"), percent-encoded runs ('+' as
// space) and base64 runs of 24 or more characters, nested up to three deep,
// breadth first, within a budget of eight times the input. Of a base64
// decoding, only the stretches of text long enough to hold a token, a
// literal form or a regex match are scanned further: not the binary of an
// image, unless a literal or regex can match bytes that are not text. The
// escapes that fill JSON strings, "\n" and "\"" and the like, are not
// decoded: the rules read them in place as the separators they decode to,
// so a token after an escaped line break is found as if the line break were
// real. Bodies with Content-Encoding gzip (every member), deflate (zlib), br
// or zstd (which the Codex CLI sends) are decoded as a stream. A finding's
// Encoding names the layers, outermost first:
// "plain", "base64", "gzip+json", "url+base64"…
//
// # Streams and limits
//
// A Stream scans a body chunk by chunk and keeps the last Scanner.Window()
// bytes (the larger of 4 KiB and the longest literal form) to scan again with
// the next chunk, so a secret or token up to that length is found however the
// body is split; its buffer is that tail plus one chunk, plus a 32 KiB block
// and the decompressor's own state for a compressed body. A compressed body
// that decodes past Config.MaxDecompressed (16 MiB by default) stops with
// ErrTooLarge after at most that much work; a corrupt or truncated one, or an
// unsupported coding, is an error, so a caller can refuse what it cannot read.
// At most 256 findings are kept per body, one per distinct secret.
//
// Not detected: secrets under encryption or any transformation not listed
// (hex, rot13, reversed, split into pieces, interleaved with other text,
// compressed inside the body rather than by Content-Encoding); format tokens
// longer than the window split across chunks; base64 runs cut by a window or
// glued to other base64-alphabet text when they hold a format token (known
// secrets and canaries are still found there); format rules beyond the
// depth or budget; secrets in headers or URLs unless the caller scans those
// too; values that are not known, not canaries and match no format.
//
// # Fingerprints
//
// A Finding never holds the secret. Its Fingerprint is the first 12 hex
// digits of the SHA-256 of the value (the configured value for known secrets
// and canaries, the matched token otherwise), enough to say which slot leaked
// or to correlate findings, and safe to log.
package dlp
