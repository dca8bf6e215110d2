# py-http-title: reports the title of a web server's root page, as a Python script.
# Written for RustMap; not derived from nmap's http-title script.
import re

import rustmap

description = """
Fetches the root page (or the path in the script argument py-http-title.url) of an HTTP
server and reports its title. The Python twin of http-title, and the example of a py-* script.
"""
author = "RustMap developers"
license = "MIT OR Apache-2.0"
categories = ["discovery", "safe"]

portrule = rustmap.is_http

TITLE = re.compile(rb"<title[^>]*>([^<]*)</title>", re.IGNORECASE)


def action(host, port):
    path = rustmap.args("url", "/")
    try:
        response = rustmap.http_get(host, port, path)
    except rustmap.SocketError:
        return None  # not reachable or not HTTP: nothing to report, as http-title
    found = TITLE.search(response.body)
    if not found:
        return f"Site has no title (status {response.status})"
    title = " ".join(found.group(1).decode("utf-8", "replace").split())
    return {"title": title}
