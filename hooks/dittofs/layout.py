"""Names that DittoFS and its Go operator fix: the generated Secrets and their keys.

The Secret builder (`children.secrets`), the StatefulSet's env and the control-plane client
all read these, so they live here, under both.
"""
JWT_SUFFIX = "jwt-secret"
JWT_KEY = "jwt-secret"
ADMIN_SUFFIX = "admin-credentials"
USERNAME_KEY, PASSWORD_KEY = "username", "password"
