"""`sealtrail ledger checkpoint|prove|audit` and `sealtrail witness`: the public log."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from sealtrail.cli.common import _deployment, _quiet_libraries

app = typer.Typer()
ledger_app = typer.Typer(help="The public append-only log: checkpoints, proofs, audits.", no_args_is_help=True)
app.add_typer(ledger_app, name="ledger")


@app.command()
def witness(
    origin: Annotated[str, typer.Option(help="The log's origin line, e.g. sealtrail.example.vn/log")],
    log_vkey: Annotated[str, typer.Option(help="The log's verifier key (as published at /log/key)")],
    state_dir: Annotated[Path, typer.Option(help="Where the witness keeps its key and what it has cosigned")] = Path(
        "witness-state"
    ),
    name: Annotated[str, typer.Option(help="The witness's key name")] = "witness.sealtrail.local",
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8900,
) -> None:
    """Run a witness: cosign (tlog-cosignature) each checkpoint that is consistent with the last one it saw."""
    import uvicorn
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519
    from fastapi import FastAPI

    from ledger.note import NoteVerifier
    from ledger.web import make_witness_router
    from ledger.witness import Cosigner, Witness

    _quiet_libraries()
    state_dir.mkdir(parents=True, exist_ok=True)
    key_path = state_dir / "witness.key.pem"
    if not key_path.exists():
        key_path.touch(mode=0o600)
        key_path.write_bytes(
            ed25519.Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    key = serialization.load_pem_private_key(key_path.read_bytes(), None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    cosigner = Cosigner(name, key)
    w = Witness(cosigner, {origin: NoteVerifier.from_vkey(log_vkey)}, state_dir / "cosigned.json")
    application = FastAPI(title="SealTrail witness")
    application.include_router(make_witness_router(w))
    typer.echo(f"Witness {name} for {origin} on http://{host}:{port}/add-checkpoint")
    typer.echo(f"Its verifier key (give it to the log and to verifiers): {cosigner.verifier.vkey}")
    uvicorn.run(application, host=host, port=port, log_level="warning")


@ledger_app.command("checkpoint")
def ledger_checkpoint(
    new: Annotated[bool, typer.Option("--new", help="Sign a fresh checkpoint of the log as it stands now")] = False,
) -> None:
    """Print the latest signed checkpoint (C2SP tlog-checkpoint, signed-note format)."""
    from sealtrail.ledgerwiring import ledger_for, publish_checkpoint

    dep = _deployment()
    if new:
        note = publish_checkpoint(dep)
    else:
        ledger, _ = ledger_for(dep)
        with dep.engine.connect() as conn:
            latest = ledger.latest_checkpoint(conn)
        if latest is None:
            typer.echo("The log has no checkpoint yet; run with --new to sign one.", err=True)
            raise typer.Exit(1)
        note = latest
    sys.stdout.write(note.decode())


@ledger_app.command("prove")
def ledger_prove(
    document: Annotated[str | None, typer.Option(help="Document ID whose issue entry to prove")] = None,
    index: Annotated[int | None, typer.Option(help="Log entry index to prove")] = None,
    old_size: Annotated[
        int | None, typer.Option("--from-size", help="Print a consistency proof from this size")
    ] = None,
) -> None:
    """Print a .tlog-proof (C2SP tlog-proof) for an entry, or a consistency proof to the latest checkpoint."""
    import base64

    from sqlmodel import Session

    from ledger.note import open_checkpoint
    from registry.records import DocumentRecord
    from sealtrail.ledgerwiring import ledger_for

    dep = _deployment()
    ledger, _ = ledger_for(dep)
    if document is not None:
        with Session(dep.engine) as session:
            record = session.get(DocumentRecord, document)
        if record is None or record.leaf_index is None:
            typer.echo(f"No logged document {document}.", err=True)
            raise typer.Exit(1)
        index = record.leaf_index
    with dep.engine.connect() as conn:
        if old_size is not None:
            latest = ledger.latest_checkpoint(conn)
            if latest is None:
                typer.echo("The log has no checkpoint yet.", err=True)
                raise typer.Exit(1)
            checkpoint = open_checkpoint(latest, ledger.verifier, ledger.origin)
            for h in ledger.prove_consistency(conn, old_size, checkpoint.size):
                typer.echo(base64.b64encode(h).decode())
            return
        if index is None:
            typer.echo("Give --document, --index or --from-size.", err=True)
            raise typer.Exit(2)
        sys.stdout.write(ledger.tlog_proof(conn, index).decode())


@ledger_app.command("audit")
def ledger_audit() -> None:
    """Rebuild the tree from the entries; check nodes, checkpoints, the documents table and the stored files."""
    from sealtrail.ledgerwiring import audit_deployment

    problems = audit_deployment(_deployment())
    if problems:
        typer.echo("Sổ cái có vấn đề / the ledger audit found problems:", err=True)
        for p in problems:
            typer.echo(f"  - {p}", err=True)
        raise typer.Exit(1)
    typer.echo("Sổ cái nhất quán / the ledger audit passed: entries, tree, checkpoints, documents and files agree.")
