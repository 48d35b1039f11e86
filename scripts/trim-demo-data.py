#!/usr/bin/env python3
"""Cut the sample that `catchment demo` replays out of a Stack Exchange dump.

Keeps the first QUESTIONS questions (by creation date) with their answers, the
comments and votes on those posts, and the users and tags they mention. Rows are
copied byte for byte, so the sample stays in the dump's own schema.

    python3 scripts/trim-demo-data.py ../shared/data/history-meta cli/demo/history-meta
"""
import os
import re
import sys

QUESTIONS = int(os.environ.get("QUESTIONS", "240"))
ATTR = re.compile(r'\s(\w+)="([^"]*)"')


def rows(path):
    with open(path, encoding="utf-8-sig") as f:
        lines = f.read().split("\n")
    head = [l for l in lines[:2]]
    body = [l for l in lines[2:] if l.lstrip().startswith("<row")]
    tail = [l for l in lines[2:] if l.strip().startswith("</")]
    return head, [(l, dict(ATTR.findall(l))) for l in body], tail


def write(path, head, kept, tail):
    with open(path, "w", encoding="utf-8") as f:
        f.write("\ufeff" + "\n".join(head + [l for l, _ in kept] + tail) + "\n")


def main(src, dst):
    os.makedirs(dst, exist_ok=True)
    ph, posts, pt = rows(os.path.join(src, "Posts.xml"))
    questions = sorted((a["CreationDate"], a["Id"]) for _, a in posts if a.get("PostTypeId") == "1")
    qids = {i for _, i in questions[:QUESTIONS]}
    kept_posts = [(l, a) for l, a in posts if a["Id"] in qids or a.get("ParentId") in qids]
    pids = {a["Id"] for _, a in kept_posts}
    write(os.path.join(dst, "Posts.xml"), ph, kept_posts, pt)

    users = {a.get("OwnerUserId") for _, a in kept_posts}
    for name, key in (("Comments.xml", "PostId"), ("Votes.xml", "PostId")):
        h, rs, t = rows(os.path.join(src, name))
        kept = [(l, a) for l, a in rs if a.get(key) in pids]
        users |= {a.get("UserId") for _, a in kept}
        write(os.path.join(dst, name), h, kept, t)

    h, rs, t = rows(os.path.join(src, "Users.xml"))
    write(os.path.join(dst, "Users.xml"), h, [(l, a) for l, a in rs if a["Id"] in users], t)
    tags = set()
    for _, a in kept_posts:
        tags |= set(re.findall(r"&lt;(.*?)&gt;", a.get("Tags", "")))
    h, rs, t = rows(os.path.join(src, "Tags.xml"))
    write(os.path.join(dst, "Tags.xml"), h, [(l, a) for l, a in rs if a["TagName"] in tags], t)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
