"""The data product portal `icemesh serve` serves at `/`: server-rendered pages over the same services the
REST and management APIs call, for the logged-in principal, so it can never show more than the API would."""
