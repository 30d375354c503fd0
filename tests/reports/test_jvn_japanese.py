"""A Japanese technical report gives JVN iPedia's Japanese title, overview and solution
of the vulnerabilities JVN describes; the English report keeps the English text (both
databases, the real NEC Aterm entry and a declared Aterm WX3600HP at firmware 1.0.5)."""

from __future__ import annotations

import shutil
from html import unescape
from pathlib import Path

from sqlalchemy import Engine

from patchpilot.findings.ingest import ingest_inventory
from patchpilot.inventory.model import AssetIdentity, Collector, DeviceInfo, Inventory, PackageEntry
from patchpilot.knowledge.cpe_names import CPE
from patchpilot.knowledge.update import update_from
from patchpilot.pipeline import process_inventory
from patchpilot.reports import technical

TITLE = "NEC Atermシリーズにおける複数の脆弱性（NV25-003）"
SOLUTION = "[アップデートする] 開発者が提供する情報をもとに、ファームウェアを最新版へアップデート"


def _aterm(engine: Engine, shared_data: Path, tmp_path: Path) -> None:
    feeds = tmp_path / "feeds" / "jvn"
    feeds.mkdir(parents=True)
    shutil.copy(shared_data / "jvn" / "hnd" / "dataFeed_jvndb_detail_hnd.xml", feeds)
    assert [r.status for r in update_from(engine, [feeds.parent])] == ["loaded"]
    declared = Inventory(
        asset=AssetIdentity(hostname="aterm-office"),
        device=DeviceInfo(vendor="NEC", model="Aterm WX3600HP", firmware="1.0.5",
                          identified=True, sources=["declared"]),
        packages=[PackageEntry(ecosystem=CPE, name="nec:aterm_wx3600hp_firmware",
                               version="1.0.5")],
        collector=Collector(name="declared"))
    process_inventory(engine, ingest_inventory(engine, declared).inventory_id)


def test_japanese_report_has_jvn_text(engine: Engine, shared_data: Path,
                                      tmp_path: Path) -> None:
    _aterm(engine, shared_data, tmp_path)
    with engine.connect() as conn:
        ja = unescape(technical.build(conn, lang="ja", fmt="html").decode())
        en = unescape(technical.build(conn, lang="en", fmt="html").decode())
    assert f'<span class="k">名称</span>{TITLE}</div>' in ja
    assert SOLUTION in ja and "(JVNDB-2025-000002)" in ja
    assert "日本電気株式会社が提供するAtermシリーズには" in ja
    assert TITLE not in en and SOLUTION not in en
    assert "nec:aterm_wx3600hp_firmware: CVE-2025-0356" in en
