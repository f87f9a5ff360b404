"""``GET /v2/<name>/referrers/<digest>``: an OCI index of the manifests whose subject is the digest."""

from __future__ import annotations

import json

from starlette.responses import Response

from dockyard.api.context import Context
from dockyard.api.params import digest_param
from dockyard.oci import mediatypes as mt


async def list_referrers(ctx: Context) -> Response:
    subject = digest_param(ctx.params["digest"])
    found = await ctx.model.referrers(ctx.name, subject)
    headers = {}
    artifact_type = ctx.request.query_params.get("artifactType")
    if artifact_type:
        found = [d for d in found if d.artifact_type == artifact_type]
        headers["OCI-Filters-Applied"] = "artifactType"
    body = {"schemaVersion": 2, "mediaType": mt.OCI_INDEX, "manifests": [d.to_json() for d in found]}
    return Response(json.dumps(body).encode(), 200, headers, media_type=mt.OCI_INDEX)
