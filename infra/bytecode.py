"""Adds compiled bytecode to the Lambda package chalice built (make package).

chalice's deployment.zip holds sources only, and /var/task is read-only: without .pyc files every cold start
compiles every module it imports, the dependencies' too (BENCHMARKS.md, Cold start). This compiles each .py of the
zip with this interpreter (chalice chose the Lambda runtime from it: the script checks the template says so) and
adds it where Python looks, as an unchecked-hash .pyc: valid whatever the files' times are after Lambda unpacks
them. Tracebacks still name /var/task/<path>, where Lambda puts the code.

    python infra/bytecode.py build/package/dev
"""
import importlib.util
import json
import py_compile
import sys
import tempfile
import zipfile
from pathlib import Path

TASK_ROOT = "/var/task"  # where Lambda unpacks the package


def runtime_matches(sam: dict) -> bool:
    wanted = f"python{sys.version_info.major}.{sys.version_info.minor}"
    runtimes = {r["Properties"].get("Runtime") for r in sam["Resources"].values()
                if r.get("Type") == "AWS::Serverless::Function"}
    return runtimes == {wanted}


def add_bytecode(package: Path) -> int:
    """Rewrites deployment.zip with a fresh .pyc beside each .py; any .pyc chalice copied from the working tree
    (timestamp-checked against this machine's files) is dropped."""
    zip_path = package / "deployment.zip"
    added = 0
    with tempfile.TemporaryDirectory() as tmp:
        rebuilt = Path(tmp) / "deployment.zip"
        with zipfile.ZipFile(zip_path) as bundle, zipfile.ZipFile(rebuilt, "w", zipfile.ZIP_DEFLATED) as out:
            for info in bundle.infolist():
                if info.filename.endswith(".pyc"):
                    continue
                data = bundle.read(info)
                out.writestr(info, data)
                if info.filename.endswith(".py") and _compiled(info.filename, data, Path(tmp), out):
                    added += 1
        rebuilt.replace(zip_path)
    return added


def _compiled(name: str, source: bytes, tmp: Path, out: zipfile.ZipFile) -> bool:
    cached = importlib.util.cache_from_source(name)
    path = tmp / "src" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(source)
    try:
        py_compile.compile(str(path), cfile=str(tmp / "pyc"), dfile=f"{TASK_ROOT}/{name}", doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    except py_compile.PyCompileError:
        return False  # e.g. a package's Python 2 example file: Lambda never imports it either
    out.write(tmp / "pyc", cached)
    path.unlink()
    return True


def main(argv: list[str]) -> int:
    package = Path(argv[1])
    sam = json.loads((package / "sam.json").read_text())
    if not runtime_matches(sam):
        print(f"bytecode: the functions' runtime is not this interpreter's ({sys.version.split()[0]}): "
              "no .pyc added", file=sys.stderr)
        return 1
    print(f"bytecode: {add_bytecode(package)} modules compiled into {package / 'deployment.zip'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
