"""Write the body of every image response to a folder.

    waylay dump -s examples/dump_images.py --set image_dir=images

Files are named after the flow and the URL's last segment (`17-logo.png`), with an extension
from the Content-Type when the URL has none. Only image responses are held whole for the
response hook; every other response streams past it.
"""

import mimetypes
import re
from pathlib import Path
from urllib.parse import urlsplit

from waylay import Flow, Loader, Response


def is_image(response: Response) -> bool:
    return response.headers.get("content-type", "").lower().startswith("image/")


class DumpImages:
    def load(self, loader: Loader) -> None:
        loader.add_option("image_dir", str, "images", "the folder the images are written to")
        self.options = loader.options

    def responseheaders(self, flow: Flow) -> None:
        assert flow.response is not None  # always set by the time this hook runs
        if not is_image(flow.response):
            flow.response.stream = True

    def response(self, flow: Flow) -> None:
        assert flow.response is not None
        if not is_image(flow.response):
            return
        # content: the body with any Content-Encoding undone; None if it streamed past this
        # hook (larger than --stream-large-bodies, 32m unless set).
        content = flow.response.content
        if content is None:
            return
        folder = Path(self.options.image_dir)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / self.file_name(flow)).write_bytes(content)

    def file_name(self, flow: Flow) -> str:
        assert flow.response is not None
        last = urlsplit(flow.request.url).path.rsplit("/", 1)[-1]
        name = re.sub(r"[^\w.-]", "_", last).lstrip(".") or "image"
        if "." not in name:
            content_type = flow.response.headers.get("content-type", "").partition(";")[0]
            name += mimetypes.guess_extension(content_type.strip()) or ""
        return f"{flow.id}-{name}"


addons = [DumpImages()]
