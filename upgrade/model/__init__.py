"""The domain model: Runtime versions, images, the release catalog, Dockerfiles, templates."""
