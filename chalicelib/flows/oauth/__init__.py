"""The OpenID Provider (issue 17): a business's apps send people here and get them back signed in.

    provider.py   the protocol: Authlib's authorization server, grants and revocation over this product's storage
    subjects.py   who signs in (staff, portal user, access-link holder), read live; their app sessions and claims
    hosted.py     the hosted session (a browser's sign-in to the hosted pages) and the remembered authorize request
"""
