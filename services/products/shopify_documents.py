"""The Admin GraphQL documents Vitrine sends Shopify (their answers read in `shopify_format`).

Costs are Shopify's "requested" points (an object 1, a connection 2 + first x its node, a
mutation 10); the bucket is refunded to the actual cost once answered. 1000 is the most a query
may ask.
"""

_VARIANT_FIELDS = """
fragment VitrineVariant on ProductVariant {
  id
  title
  price
  sku
  inventoryQuantity
  inventoryPolicy
  inventoryItem { id tracked }
  media(first: 1) { nodes { ... on MediaImage { image { url } } } }
}
"""
_PRODUCT_FIELDS = """
fragment VitrineProduct on Product {
  id
  title
  status
  description
  onlineStoreUrl
  media(first: 10) { nodes { ... on MediaImage { image { url } } } }
}
"""
SHOP = "query VitrineShop { shop { currencyCode } }"
# At most 2 + first points: a cursor to start from, nothing else.
SKIP = """
query VitrineSkip($first: Int!, $after: String, $query: String!) {
  productsCount(query: $query) { count precision }
  products(first: $first, after: $after, query: $query, sortKey: TITLE) {
    pageInfo { hasNextPage endCursor }
  }
}
"""
# ≈ 6 products x (1 + 22 media + 2 + 16 variants x 6) ≈ 730 points (1000 is the most a query may).
PRODUCTS = (
    """
query VitrineProducts($first: Int!, $after: String, $query: String!, $variants: Int!) {
  shop { currencyCode }
  productsCount(query: $query) { count precision }
  products(first: $first, after: $after, query: $query, sortKey: TITLE) {
    pageInfo { hasNextPage endCursor }
    nodes {
      ...VitrineProduct
      variants(first: $variants) {
        pageInfo { hasNextPage endCursor }
        nodes { ...VitrineVariant }
      }
    }
  }
}
"""
    + _PRODUCT_FIELDS
    + _VARIANT_FIELDS
)
MORE_VARIANTS = (
    """
query VitrineMoreVariants($id: ID!, $first: Int!, $after: String) {
  product(id: $id) {
    variants(first: $first, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { ...VitrineVariant }
    }
  }
}
"""
    + _VARIANT_FIELDS
)
VARIANT = (
    """
query VitrineVariant($id: ID!) {
  shop { currencyCode }
  productVariant(id: $id) {
    ...VitrineVariant
    product { ...VitrineProduct }
  }
}
"""
    + _PRODUCT_FIELDS
    + _VARIANT_FIELDS
)
_DISCOUNT_FIELDS = """
fragment VitrineDiscount on DiscountCodeNode {
  id
  codeDiscount {
    __typename
    ... on DiscountCodeBasic {
      status
      customerGets {
        items {
          __typename
          ... on DiscountProducts {
            productVariants(first: 250) { nodes { id } }
            products(first: 250) { nodes { id } }
          }
        }
      }
    }
  }
}
"""
DISCOUNT_BY_ID = (
    "query VitrineDiscount($id: ID!) { codeDiscountNode(id: $id) { ...VitrineDiscount } }"
    + _DISCOUNT_FIELDS
)
DISCOUNT_BY_CODE = (
    "query VitrineDiscountByCode($code: String!) {"
    " codeDiscountNodeByCode(code: $code) { ...VitrineDiscount } }" + _DISCOUNT_FIELDS
)
_MUTATION_ANSWER = "codeDiscountNode { id } userErrors { field code message }"
CREATE = f"""
mutation VitrineDiscountCreate($discount: DiscountCodeBasicInput!) {{
  discountCodeBasicCreate(basicCodeDiscount: $discount) {{ {_MUTATION_ANSWER} }}
}}
"""
UPDATE = f"""
mutation VitrineDiscountUpdate($id: ID!, $discount: DiscountCodeBasicInput!) {{
  discountCodeBasicUpdate(id: $id, basicCodeDiscount: $discount) {{ {_MUTATION_ANSWER} }}
}}
"""
DEACTIVATE = f"""
mutation VitrineDiscountDeactivate($id: ID!) {{
  discountCodeDeactivate(id: $id) {{ {_MUTATION_ANSWER} }}
}}
"""
