"""Git repositories inside a layer: every blob of the object database, reachable or not.

A ``COPY . /app`` that brings ``.git`` along ships the whole history: a key committed once and
removed in the next commit is still a blob in ``.git/objects``, zlib-compressed (loose) or
delta-compressed in a packfile, where no byte scan sees it.

The layer walk streams tar members one at a time, so a repository arrives as separate entries.
:class:`Collector` copies the members that make up its object database (``objects/??/*``,
``objects/pack/pack-*.pack|idx``, ``refs/**``, ``packed-refs``, ``HEAD``) of every repository
in the layer to one temporary directory on disk (never memory), up to ``GitLimits.spool_bytes``
per layer; everything else in ``.git`` (``config`` with a credential URL, ``logs``) is scanned as
the ordinary file it is. At the end of the layer each repository is read with dulwich:

- every object is looked at, by its header first (type and size, through delta chains, without
  inflating it), so a blob bomb is refused before it costs memory (``GitLimits.max_blob``);
- commits are walked oldest first, reachable ones (from ``HEAD``, ``refs/**``, ``packed-refs``)
  before dangling ones, so each blob is attributed to the first commit that has it and its path
  in that commit's tree;
- each blob is scanned like a file at that path in the working tree (credential-file parsers,
  nested archives and decoders included); commit and tag messages are scanned too.

A finding's ``path`` is the layer file that holds the object (the packfile or the loose object,
so its status follows that file), its ``inner_path`` ``[git] <commit12>:<path>`` (``[git] blob
<sha12>`` for a blob no commit names, ``[git] <commit12> message`` for a message), and its
``git`` origin says the commit, the path, whether the commit is reachable from a ref, and
whether the same secret is still in the working-tree file at that path in the same layer.
"""

from __future__ import annotations

import io
import os
import posixpath
import re
import shutil
import stat
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO

from dulwich.object_format import SHA1
from dulwich.object_store import DiskObjectStore
from dulwich.objects import Commit, ObjectID, Tag, Tree
from dulwich.pack import PackIndex, load_pack_index

from layerleak.detect.engine import FILE_HEAD, Engine
from layerleak.entries.content import scan_entry
from layerleak.entries.limits import DEFAULT_GIT_LIMITS, MIB, GitLimits
from layerleak.entries.streams import Reader
from layerleak.models import Match

# The files of a repository's object database, under a directory named ``.git`` or ``NAME.git``.
_GIT_FILE = re.compile(
    r"(?P<root>/(?:.*/)?[^/]*\.git)/(?P<rel>objects/[0-9a-f]{2}/[0-9a-f]{38}"
    r"|objects/pack/pack-[0-9a-f]{40}\.(?:pack|idx)|packed-refs|HEAD|refs/[A-Za-z0-9._/+-]{1,200})"
)
_HEX40 = re.compile(rb"[0-9a-f]{40}")
COMMIT, TREE, BLOB, TAG = 1, 2, 3, 4
OFS_DELTA, REF_DELTA = 6, 7
GITLINK = 0o160000
COPY_CHUNK = 1 * MIB
# What a damaged object database makes dulwich (and zlib) raise: hostile input to a parser
# that is not ours, so every failure is caught per object and reported, never fatal.
_DAMAGE = (Exception,)


@dataclass(frozen=True, slots=True)
class GitHit:
    path: str  # the layer file holding the object
    inner_path: str
    match: Match
    # (commit, path in its tree, object id, commit reachable from a ref, still in the work tree)
    origin: tuple[str | None, str | None, str, bool, bool]


@dataclass(slots=True)
class _Repo:
    root: str  # the .git directory's path in the layer
    dir: str  # its spool directory
    files: int = 0


@dataclass(slots=True)
class Collector:
    """The object databases of one layer's repositories, gathered as the walk passes them."""

    limits: GitLimits = DEFAULT_GIT_LIMITS
    repos: dict[str, _Repo] = field(default_factory=dict)
    spooled: int = 0
    notes: list[tuple[str, str]] = field(default_factory=list)  # (path, what was cut short)
    _tmp: str | None = None

    def take(self, path: str, f: Reader) -> bool:
        """Spool ``path`` if it belongs to a repository's object database (True: consumed)."""
        m = _GIT_FILE.fullmatch(path) if ".git/" in path else None
        if m is None:
            return False
        root, rel = m.group("root"), m.group("rel")
        repo = self.repos.get(root)
        if repo is None:
            if len(self.repos) >= self.limits.max_repos:
                self._note(root, f"more than {self.limits.max_repos} git repositories in a layer; not read")
                return True
            if self._tmp is None:
                self._tmp = tempfile.mkdtemp(prefix="layerleak-git-")
            repo = self.repos[root] = _Repo(root, os.path.join(self._tmp, str(len(self.repos))))
        target = os.path.join(repo.dir, *rel.split("/"))
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as out:
                while chunk := f.read(COPY_CHUNK):
                    self.spooled += len(chunk)
                    if self.spooled > self.limits.spool_bytes:
                        out.close()
                        os.unlink(target)
                        self._note(
                            root,
                            f"git object files past {self.limits.spool_bytes // MIB} MiB in this layer "
                            "(git spool limit); the rest were not read",
                        )
                        return True
                    out.write(chunk)
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            # a ref that is also a directory of refs (a crafted layer): that file is left out
            self._note(root, f"{rel}: clashes with another entry of the repository; not read")
            return True
        repo.files += 1
        return True

    def finish(self, engine: Engine, worktree: Iterable[tuple[str, str, str]]) -> list[GitHit]:
        """Read every gathered repository; ``worktree``: the (path, rule, secret) of the layer's
        other hits, to tell whether a historic secret is still in the working tree."""
        try:
            current = set(worktree)
            hits: list[GitHit] = []
            for repo in self.repos.values():
                hits.extend(_read_repo(repo, engine, self.limits, current, self.notes))
            return hits
        finally:
            if self._tmp is not None:
                shutil.rmtree(self._tmp, ignore_errors=True)
                self._tmp = None

    def close(self) -> None:
        """Drop what was spooled without reading it (the walk stopped early)."""
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self.repos.clear()

    def _note(self, path: str, message: str) -> None:
        if (path, message) not in self.notes:
            self.notes.append((path, message))


# --- one repository ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Packs:
    """The spooled packs' indexes: which pack holds an object, and where."""

    indexes: list[tuple[str, PackIndex]]  # (pack path in the spool, its index)

    def find(self, sha: bytes) -> tuple[str, int] | None:
        for path, index in self.indexes:
            try:
                return path, int(index.object_offset(ObjectID(sha)))
            except KeyError:
                continue
        return None

    def close(self) -> None:
        for _, index in self.indexes:
            index.close()


def _read_repo(
    repo: _Repo, engine: Engine, limits: GitLimits, current: set[tuple[str, str, str]],
    notes: list[tuple[str, str]],
) -> list[GitHit]:
    objects = os.path.join(repo.dir, "objects")
    if not os.path.isdir(objects):
        return []
    packs = _Packs(_indexes(os.path.join(objects, "pack"), repo.root, notes))
    store = DiskObjectStore(objects)
    damaged = 0
    hits: list[GitHit] = []
    try:
        kinds: dict[bytes, tuple[int, int]] = {}
        try:
            for n, sha in enumerate(store):
                if n >= limits.max_objects:
                    notes.append((repo.root, f"more than {limits.max_objects} git objects; rest not read"))
                    break
                try:
                    info = _header(sha, objects, packs, limits.max_chain)
                except _DAMAGE:
                    info = None
                if info is None:
                    damaged += 1
                    continue
                kinds[sha] = info
        except _DAMAGE as exc:  # a pack dulwich cannot list: what was listed before is read
            notes.append((repo.root, f"git object database is damaged ({_short(exc)}); read up to there"))
        reader = _Reader(repo, engine, store, packs, limits, current, notes)
        try:
            hits = reader.run(kinds, _tips(repo.dir))
        except _DAMAGE as exc:
            notes.append((repo.root, f"git repository could not be read ({_short(exc)})"))
        damaged += reader.damaged
    finally:
        store.close()
        packs.close()
    if damaged:
        notes.append((repo.root, f"{damaged} git objects could not be read (damaged?); the rest scanned"))
    return hits


def _short(exc: BaseException) -> str:
    return " ".join((str(exc) or type(exc).__name__).split())[:200]


def _indexes(folder: str, root: str, notes: list[tuple[str, str]]) -> list[tuple[str, PackIndex]]:
    out: list[tuple[str, PackIndex]] = []
    if not os.path.isdir(folder):
        return out
    for name in sorted(os.listdir(folder)):
        if not name.endswith(".idx"):
            continue
        pack = os.path.join(folder, name[:-4] + ".pack")
        if not os.path.exists(pack):
            notes.append((root, f"objects/pack/{name}: its packfile is missing; not read"))
            continue
        try:
            out.append((pack, load_pack_index(os.path.join(folder, name), SHA1)))
        except _DAMAGE:
            notes.append((root, f"objects/pack/{name}: unreadable pack index; that pack was not read"))
    return out


class _Reader:
    def __init__(
        self,
        repo: _Repo,
        engine: Engine,
        store: DiskObjectStore,
        packs: _Packs,
        limits: GitLimits,
        current: set[tuple[str, str, str]],
        notes: list[tuple[str, str]],
    ) -> None:
        self.repo = repo
        self.engine = engine
        self.store = store
        self.packs = packs
        self.limits = limits
        self.current = current
        self.notes = notes
        self.damaged = 0
        parent, base = posixpath.split(repo.root)
        self.worktree = parent if base == ".git" else None  # a bare NAME.git has none

    def run(self, kinds: dict[bytes, tuple[int, int]], tips: set[bytes]) -> list[GitHit]:
        commits: dict[bytes, Commit] = {}
        hits: list[GitHit] = []
        for sha, (kind, size) in kinds.items():
            obj = self._object(sha) if kind in (COMMIT, TAG) and size <= self.limits.max_blob else None
            if isinstance(obj, Commit):
                commits[sha] = obj
            elif isinstance(obj, Tag):
                tips.add(obj.object[1])
                hits.extend(self._message(sha, obj.message, f"[git] tag {sha[:12].decode()} message"))
        reachable = _ancestors(tips, commits)
        depth = _generations(commits)
        # Reachable commits first, oldest (by ancestry, then time) first; then dangling ones.
        order = sorted(commits, key=lambda s: (s not in reachable, depth[s], commits[s].commit_time, s))
        rank_of = {sha: n for n, sha in enumerate(order)}
        trees = {sha for sha, (kind, size) in kinds.items() if kind == TREE and size <= self.limits.max_blob}
        where = self._attribute(commits, order, trees)
        # One hit per secret per path: the version in the first commit (reachable ones first)
        # stands for the later versions of the file that still hold it.
        first: dict[tuple[str, str, str], tuple[tuple[int, str], GitHit]] = {}
        for sha, (kind, size) in kinds.items():
            if kind != BLOB:
                continue
            place = where.get(sha)
            for hit in self._blob(sha, size, place, reachable):
                rank = (rank_of[place[0]] if place else len(order), hit.inner_path)
                key = (hit.match.rule_id, hit.match.secret, hit.origin[1] or hit.inner_path)
                if key not in first or rank < first[key][0]:
                    first[key] = (rank, hit)
        hits.extend(hit for _, hit in first.values())
        for sha, c in commits.items():
            label = f"[git] {sha[:12].decode()} message"
            hits.extend(self._message(sha, c.message, label, sha in reachable))
        return hits

    def _object(self, sha: bytes) -> object | None:
        try:
            return self.store[ObjectID(sha)]
        except _DAMAGE:
            self.damaged += 1
            return None

    def _attribute(
        self, commits: dict[bytes, Commit], order: list[bytes], trees: set[bytes]
    ) -> dict[bytes, tuple[bytes, str]]:
        """blob -> (first commit in ``order`` that has it, its path there); each tree is walked
        once, and only trees whose header was read (``trees``: no bomb, no delta cycle)."""
        where: dict[bytes, tuple[bytes, str]] = {}
        seen: set[bytes] = set()
        for sha in order:
            stack = [(commits[sha].tree, "")]
            while stack:
                tree_sha, prefix = stack.pop()
                if tree_sha in seen or tree_sha not in trees:
                    continue
                seen.add(tree_sha)
                tree = self._object(tree_sha)
                if not isinstance(tree, Tree):
                    continue
                for entry in tree.iteritems():
                    name = entry.path.decode("utf-8", "replace")
                    path = f"{prefix}{name}"
                    if stat.S_ISDIR(entry.mode):
                        stack.append((entry.sha, path + "/"))
                    elif entry.mode != GITLINK:
                        where.setdefault(entry.sha, (sha, path))
        return where

    def _blob(
        self, sha: bytes, size: int, place: tuple[bytes, str] | None, reachable: set[bytes]
    ) -> Iterator[GitHit]:
        if size > self.limits.max_blob:
            self.notes.append(
                (self.repo.root, f"git blob {sha[:12].decode()} is larger than "
                 f"{self.limits.max_blob // MIB} MiB; not scanned")
            )
            return
        try:
            _, data = self.store.get_raw(ObjectID(sha))
        except _DAMAGE:
            self.damaged += 1
            return
        commit, rel = (place[0].decode(), place[1]) if place else (None, None)
        base = self.worktree or self.repo.root
        virtual = posixpath.join(base, rel) if rel else f"{self.repo.root}/objects/{sha.decode()}"
        label = f"[git] {commit[:12]}:{rel}" if commit else f"[git] blob {sha[:12].decode()}"
        stream = io.BytesIO(data)
        first = stream.read(FILE_HEAD)
        notes: list[str] = []
        reason, matches = scan_entry(virtual, first, stream, self.engine, notes)
        if reason is not None:
            return
        holder = self._holder(sha)
        live = place is not None and place[0] in reachable
        for inner, match in matches:
            in_tree = bool(self.worktree and rel) and (virtual, match.rule_id, match.secret) in self.current
            yield GitHit(
                path=holder,
                inner_path=label if inner is None else f"{label}!/{inner}",
                match=match,
                origin=(commit, rel, sha.decode(), live, in_tree),
            )
        self.notes.extend((holder, f"{label}: {note}") for note in notes)

    def _message(self, sha: bytes, message: bytes, label: str, live: bool = True) -> Iterator[GitHit]:
        if not message.strip():
            return
        holder = self._holder(sha)
        for match in self.engine.scan(message):
            yield GitHit(path=holder, inner_path=label, match=match,
                         origin=(sha.decode(), None, sha.decode(), live, False))

    def _holder(self, sha: bytes) -> str:
        """The layer file that holds object ``sha``."""
        found = self.packs.find(sha)
        if found is not None:
            return f"{self.repo.root}/objects/pack/{os.path.basename(found[0])}"
        text = sha.decode()
        return f"{self.repo.root}/objects/{text[:2]}/{text[2:]}"


def _ancestors(tips: set[bytes], commits: dict[bytes, Commit]) -> set[bytes]:
    seen: set[bytes] = set()
    stack = [t for t in tips if t in commits]
    while stack:
        sha = stack.pop()
        if sha in seen:
            continue
        seen.add(sha)
        stack.extend(p for p in commits[sha].parents if p in commits and p not in seen)
    return seen


def _generations(commits: dict[bytes, Commit]) -> dict[bytes, int]:
    """Each commit's distance from its oldest known ancestor (root commits: 0)."""
    depth: dict[bytes, int] = {}
    for start in commits:
        stack = [start]
        while stack:
            sha = stack[-1]
            if sha in depth:
                stack.pop()
                continue
            todo = [p for p in commits[sha].parents if p in commits and p not in depth]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            depth[sha] = 1 + max((depth[p] for p in commits[sha].parents if p in commits), default=-1)
    return depth


def _tips(folder: str) -> set[bytes]:
    """Object ids that refs name: HEAD, refs/**, packed-refs (symbolic refs need no following:
    the ref they name is read as well)."""
    tips: set[bytes] = set()
    paths = [os.path.join(folder, "HEAD"), os.path.join(folder, "packed-refs")]
    for dirpath, _, names in os.walk(os.path.join(folder, "refs")):
        paths.extend(os.path.join(dirpath, n) for n in names)
    for path in paths:
        try:
            with open(path, "rb") as f:
                text = f.read(16 * MIB)
        except OSError:
            continue
        for line in text.splitlines():
            m = _HEX40.match(line.lstrip(b"^"))
            if m:
                tips.add(m.group(0))
    return tips


# --- object headers: type and size without inflating ------------------------------------------


def _header(sha: bytes, objects: str, packs: _Packs, max_chain: int) -> tuple[int, int] | None:
    """(type, size) of object ``sha`` read from its header alone (through delta chains: a
    delta's type is its base's, its size the one the delta header states)."""
    found = packs.find(sha)
    if found is None:
        text = sha.decode()
        return _loose_header(os.path.join(objects, text[:2], text[2:]))
    path, offset = found
    size: int | None = None
    with open(path, "rb") as f:
        for _ in range(max_chain):
            f.seek(offset)
            head = f.read(64)
            kind, length, pos = _entry_header(head)
            if kind not in (OFS_DELTA, REF_DELTA):
                return kind, length if size is None else size
            if kind == OFS_DELTA:
                back, pos = _ofs(head, pos)
                base_offset = offset - back
                f.seek(offset + pos)
            else:
                base = head[pos : pos + 20].hex().encode()
                f.seek(offset + pos + 20)
                located = packs.find(base)
                if located is None or located[0] != path:
                    return _base_kind(base, objects, packs, max_chain, size, f)
                base_offset = located[1]
            if size is None:
                size = _delta_target_size(f.read(4096))
            offset = base_offset
    return None


def _base_kind(
    base: bytes, objects: str, packs: _Packs, max_chain: int, size: int | None, f: IO[bytes]
) -> tuple[int, int] | None:
    """A REF_DELTA whose base lives elsewhere (another pack, a loose object)."""
    if size is None:
        size = _delta_target_size(f.read(4096))
    info = _header(base, objects, packs, max_chain - 1) if max_chain > 1 else None
    return None if info is None else (info[0], size)


def _entry_header(head: bytes) -> tuple[int, int, int]:
    """A pack entry's type and (inflated) length, and where its data starts."""
    c = head[0]
    kind, size, shift, pos = (c >> 4) & 7, c & 15, 4, 1
    while c & 0x80:
        c = head[pos]
        size |= (c & 0x7F) << shift
        shift += 7
        pos += 1
    return kind, size, pos


def _ofs(head: bytes, pos: int) -> tuple[int, int]:
    c = head[pos]
    pos += 1
    back = c & 0x7F
    while c & 0x80:
        c = head[pos]
        pos += 1
        back = ((back + 1) << 7) | (c & 0x7F)
    return back, pos


def _delta_target_size(compressed: bytes) -> int:
    data = zlib.decompressobj().decompress(compressed, 32)
    pos = 0
    for _ in range(2):  # the base's size, then the result's
        size, shift = 0, 0
        while True:
            c = data[pos]
            pos += 1
            size |= (c & 0x7F) << shift
            shift += 7
            if not c & 0x80:
                break
    return size


_LOOSE_KINDS = {b"commit": COMMIT, b"tree": TREE, b"blob": BLOB, b"tag": TAG}


def _loose_header(path: str) -> tuple[int, int] | None:
    """A loose object's type and size, and only if its zlib stream inflates to no more than the
    size it declares (dulwich inflates a loose object whole: a bomb must not reach it)."""
    with open(path, "rb") as f:
        inflate = zlib.decompressobj()
        head = inflate.decompress(f.read(4096), 64)
        kind, _, rest = head.partition(b" ")
        size_text, nul, _ = rest.partition(b"\0")
        if kind not in _LOOSE_KINDS or not size_text.isdigit() or not nul:
            return None
        size = int(size_text)
        allowed = len(kind) + 1 + len(size_text) + 1 + size
        produced = len(head)
        pending = inflate.unconsumed_tail
        while not inflate.eof:
            data = pending or f.read(COPY_CHUNK)
            if not data:
                return None  # truncated
            produced += len(inflate.decompress(data, COPY_CHUNK))
            pending = inflate.unconsumed_tail
            if produced > allowed:
                return None  # more than it says: not read
    return _LOOSE_KINDS[kind], size
