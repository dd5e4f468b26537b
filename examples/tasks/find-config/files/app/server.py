from app import settings


def serve(port=None):
    print(f"listening on {port or settings.PORT}")
