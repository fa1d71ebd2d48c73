"""Settings of the HTTP API (env GRIDMGR_API_*; the store URL also from GRIDMGR_DATABASE_URL)."""

from __future__ import annotations

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ApiSettings(BaseSettings):
    """Where the store is, pool sizes, caches and request bounds of the API server."""

    model_config = SettingsConfigDict(env_prefix="GRIDMGR_API_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("GRIDMGR_API_DATABASE_URL", "GRIDMGR_DATABASE_URL",
                                      "database_url"),
        description="store URL; default sqlite:///gridmgr.db",
    )
    pool_min_size: int = Field(default=2, ge=1, le=100, description="asyncpg connections kept")
    pool_max_size: int = Field(default=8, ge=1, le=200, description="asyncpg connections at most")
    sync_pool_size: int = Field(default=8, ge=1, le=100,
                                description="SQLAlchemy connections (SpatiaLite, reports)")
    token_cache_seconds: float = Field(
        default=30.0, ge=0, le=3600,
        description="how long a worker trusts a token it has checked; a revocation takes "
                    "effect within this time")
    max_radius_m: float = Field(default=5000.0, gt=0, le=50_000,
                                description="largest radius of /houses?lon=&lat=&radius_m=")
    max_offset: int = Field(default=100_000, ge=0,
                            description="largest offset of OGC items paging; narrow the bbox")
    count_cap: int = Field(default=100_000, ge=1,
                           description="numberMatched is given when at most this many match")
    workload_cache_size: int = Field(default=100_000, ge=0,
                                     description="derived grid workloads kept per worker")
    prewarm_workload: bool = Field(default=True,
                                   description="derive every grid's workload at start-up")
    use_asyncpg: bool = Field(default=True,
                              description="serve PostGIS hot paths through asyncpg")
    docs: bool = Field(default=True, description="serve /docs (OpenAPI is always served)")
