# botocore imports urllib3's pyOpenSSL adapter whenever pyOpenSSL is installed (webauthn brings it), which loads
# pyOpenSSL and cryptography on every cold start (~60 ms) only to use the standard library's ssl anyway. Blocking
# that one module makes botocore take its ssl path, as it does without pyOpenSSL; webauthn imports OpenSSL itself.
import sys

sys.modules.setdefault("urllib3.contrib.pyopenssl", None)  # type: ignore[arg-type]
