"""The management API's services over the catalog service: governance (principals, tags, grants, access checks,
policy files, audit), namespaces with owners, the product registry and the change feed's read side."""
