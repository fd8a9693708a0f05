"""`dreamcore tokens find` and `dreamcore tokens lookalike`. Heavy imports stay inside the handlers."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path


def register(commands) -> None:
    """Add the `tokens` command group to the dreamcore CLI."""
    tokens = commands.add_parser("tokens", help="find a rare token or rank look-alike names for the instance prompt")
    actions = tokens.add_subparsers(required=True, metavar="ACTION")

    find = actions.add_parser("find", help="rank rare single-token identifiers of a model's vocabulary")
    find.add_argument("--model", required=True, help="diffusers pipeline folder (or cached hub id)")
    find.add_argument("--class-word", default="", help="the subject's class, e.g. dog or man (scored in the prompt)")
    find.add_argument("--template", default="a photo of {token} {class_word}", help="prompt the token is read in")
    find.add_argument("--max-tokens", type=int, default=1, help="most tokens per tokenizer (default 1)")
    find.add_argument("--min-length", type=int, default=3, help="fewest letters (default 3)")
    find.add_argument("--max-length", type=int, default=8, help="most letters (default 8)")
    find.add_argument("--top", type=int, default=20, help="suggestions to show (default 20)")
    find.add_argument("--batch-size", type=int, default=256, help="prompts per text-encoder batch")
    find.add_argument("--wordlist", help="common words to exclude, one per line (default: the shipped list)")
    find.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    find.add_argument("--output", help="also write the table to this .json or .csv file")
    find.add_argument("--no-progress", action="store_true", help="no progress bar")
    find.set_defaults(handler=_find)

    lookalike = actions.add_parser(
        "lookalike", help="rank names (e.g. celebrities) by closeness to the class and subject"
    )
    lookalike.add_argument("--model", required=True, help="diffusers pipeline folder (or cached hub id)")
    lookalike.add_argument("--class-word", required=True, help="the subject's class, e.g. man, woman, dog")
    lookalike.add_argument("--names", nargs="+", default=[], help="candidate names (quote names with spaces)")
    lookalike.add_argument("--names-file", help="text file with one candidate name per line")
    lookalike.add_argument("--images", nargs="+", default=[], help="subject image files or folders")
    lookalike.add_argument("--clip-model", help="local CLIPModel folder for comparing names with the images")
    lookalike.add_argument("--image-weight", type=float, default=0.5, help="weight of the image similarity (0..1)")
    lookalike.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    lookalike.add_argument("--output", help="also write the table to this .json or .csv file")
    lookalike.set_defaults(handler=_lookalike)


def _quiet_loading() -> None:
    # transformers draws a "Loading weights" bar per encoder; ours is the one that matters.
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()


def _find(args: argparse.Namespace) -> int:
    from dreamcore.tokens.encoders import load_text_encoders
    from dreamcore.tokens.finder import TokenSearchOptions, find_rare_tokens
    from dreamcore.tokens.report import SCORE_MEANING, instance_prompt_snippet, summary, text_table, token_rows
    from dreamcore.tokens.wordlist import load_common_words

    options = TokenSearchOptions(
        class_word=args.class_word,
        template=args.template,
        max_tokens=args.max_tokens,
        min_length=args.min_length,
        max_length=args.max_length,
        top=args.top,
        batch_size=args.batch_size,
    )
    common_words = load_common_words(args.wordlist)
    _quiet_loading()
    encoders = load_text_encoders(args.model, args.device)
    with _progress_bar(args.no_progress, "scanning tokens") as on_progress:
        search = find_rare_tokens(encoders, common_words, options, on_progress)
    rows = token_rows(search)
    print(text_table(rows))
    print(f"\n{summary(search)}\n{SCORE_MEANING}\n\nbest instance prompt:\n{instance_prompt_snippet(search)}")
    if args.output:
        _write_rows(Path(args.output), rows, {"score": SCORE_MEANING, "summary": summary(search)})
    return 0


def _lookalike(args: argparse.Namespace) -> int:
    from dreamcore.tokens.encoders import load_text_encoders
    from dreamcore.tokens.lookalike import clip_image_similarities, load_clip, rank_lookalikes
    from dreamcore.tokens.report import lookalike_rows, text_table

    names = list(args.names) + _read_names(args.names_file)
    _quiet_loading()
    similarities = None
    if args.images or args.clip_model:
        if not (args.images and args.clip_model):
            raise SystemExit("give both --images and --clip-model to compare names with the subject images")
        images = _image_files(args.images)
        similarities = clip_image_similarities(load_clip(args.clip_model, args.device), images, names)
    encoders = load_text_encoders(args.model, args.device)
    ranked = rank_lookalikes(encoders, args.class_word, names, similarities, args.image_weight)
    rows = lookalike_rows(ranked)
    print(text_table(rows))
    print(f"\nbest stand-in: {ranked[0].name!r} -> instance_prompt {ranked[0].name!r}")
    if args.output:
        _write_rows(Path(args.output), rows, {"class_word": args.class_word})
    return 0


class _progress_bar:
    """A tqdm bar fed by the finder's (done, total) callback; nothing when disabled."""

    def __init__(self, disabled: bool, label: str) -> None:
        self.disabled, self.label, self.bar = disabled, label, None

    def __enter__(self):
        return None if self.disabled else self._update

    def _update(self, done: int, total: int) -> None:
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.label, unit="tok", file=sys.stderr)
        self.bar.update(done - self.bar.n)

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()


def _read_names(path: str | None) -> list[str]:
    if not path:
        return []
    file = Path(path).expanduser()
    if not file.is_file():
        raise SystemExit(f"names file {file} not found: give a text file with one name per line")
    return [line.strip() for line in file.read_text(encoding="utf-8").splitlines() if line.strip()]


def _image_files(paths: list[str]) -> list[Path]:
    from dreamcore.data.images import is_image_name

    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.is_file() and is_image_name(p))
        elif path.is_file():
            files.append(path)
        else:
            raise SystemExit(f"subject image {path} not found")
    if not files:
        raise SystemExit(f"no image files in {', '.join(paths)}")
    return files


def _write_rows(path: Path, rows: list[dict], about: dict) -> None:
    if path.suffix.lower() == ".csv":
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        for row in rows:
            writer.writerow({k: " ".join(map(str, v)) if isinstance(v, list) else v for k, v in row.items()})
        path.write_text(buffer.getvalue(), encoding="utf-8")
    else:
        path.write_text(json.dumps({**about, "rows": rows}, indent=2) + "\n", encoding="utf-8")
    print(f"table written: {path}", file=sys.stderr)
