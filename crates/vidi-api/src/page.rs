//! api.video's list envelope: `{data, pagination}` with `links` as an array of `{rel, uri}`
//! (contract §1.4; Python 1.3.0 rejects the object form shown in the spec's example).

use serde::Serialize;
use vidi_core::model::PageRequest;

use crate::extract::Query;
use crate::{ApiError, ApiResult};

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Pagination {
    pub items_total: u64,
    pub pages_total: u64,
    pub page_size: u32,
    pub current_page: u32,
    pub current_page_items: u32,
    pub links: Vec<PaginationLink>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PaginationLink {
    pub rel: String,
    pub uri: String,
}

/// A list's answer; a schema of its own per item type, so /openapi.json gives each list its
/// exact envelope (`data` typed) rather than the pagination object alone.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Page<T: Serialize> {
    pub data: Vec<T>,
    pub pagination: Pagination,
}

fn int_param(q: &Query, name: &str, default: u32, max: u32) -> ApiResult<u32> {
    match q.get(name) {
        None | Some("") => Ok(default),
        Some(v) => {
            let n: i64 = v
                .trim()
                .parse()
                .map_err(|_| ApiError::invalid_query(name, format!("The \"{name}\" parameter must be an integer.")))?;
            if n < 1 || n > max as i64 {
                return Err(ApiError::query_out_of_range(name, format!("\"{name}\" must be between 1 and {max}.")));
            }
            Ok(n as u32)
        }
    }
}

/// A list's order as asked: `sortBy` (one of the resource's fields, `None` when absent) and
/// `sortOrder`.
pub struct Sort<T> {
    pub by: Option<T>,
    pub descending: bool,
}

/// Reads `sortBy` and `sortOrder` (`asc` or `desc`, any case), the one place every list does.
/// `fields` are the resource's sortable fields as api.video names them, in the order the error
/// lists them. Without `sortOrder` a list is ascending, except one with no `sortBy` when
/// `unsorted_descending` (videos: newest first).
pub fn sort<T: Copy>(q: &Query, fields: &[(&str, T)], unsorted_descending: bool) -> ApiResult<Sort<T>> {
    let by = match q.get("sortBy") {
        None | Some("") => None,
        Some(name) => match fields.iter().find(|(f, _)| *f == name) {
            Some((_, by)) => Some(*by),
            None => return Err(ApiError::invalid_query("sortBy", sort_by_expected(fields))),
        },
    };
    let descending = match q.get("sortOrder").map(str::to_ascii_lowercase).as_deref() {
        None | Some("") => by.is_none() && unsorted_descending,
        Some("asc") => false,
        Some("desc") => true,
        Some(_) => return Err(ApiError::invalid_query("sortOrder", "sortOrder must be asc or desc.")),
    };
    Ok(Sort { by, descending })
}

fn sort_by_expected<T>(fields: &[(&str, T)]) -> String {
    let names: Vec<&str> = fields.iter().map(|(f, _)| *f).collect();
    match names.as_slice() {
        [a, b] => format!("sortBy must be {a} or {b}."),
        _ => format!("sortBy must be one of {}.", names.join(", ")),
    }
}

/// Reads `currentPage` (≥ 1) and `pageSize` (1–100, default 25).
pub fn page_request(q: &Query) -> ApiResult<PageRequest> {
    Ok(PageRequest { page: int_param(q, "currentPage", 1, u32::MAX / 2)?, size: int_param(q, "pageSize", 25, 100)? })
}

/// Builds the envelope. `path` is the list's path; the other query filters are kept in the links.
pub fn page<T: Serialize>(path: &str, q: &Query, req: PageRequest, total: u64, data: Vec<T>) -> Page<T> {
    let pages_total = total.div_ceil(req.size as u64);
    let keep = q.without_paging();
    let uri = |p: u64| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (k, v) in &keep {
            s.append_pair(k, v);
        }
        s.append_pair("currentPage", &p.to_string());
        s.append_pair("pageSize", &req.size.to_string());
        format!("{path}?{}", s.finish())
    };
    let current = req.page as u64;
    let last = pages_total.max(1);
    let mut links = vec![
        PaginationLink { rel: "self".into(), uri: uri(current) },
        PaginationLink { rel: "first".into(), uri: uri(1) },
    ];
    if current > 1 && current <= last {
        links.push(PaginationLink { rel: "previous".into(), uri: uri(current - 1) });
    }
    if current < pages_total {
        links.push(PaginationLink { rel: "next".into(), uri: uri(current + 1) });
    }
    links.push(PaginationLink { rel: "last".into(), uri: uri(last) });
    Page {
        pagination: Pagination {
            items_total: total,
            pages_total,
            page_size: req.size,
            current_page: req.page,
            current_page_items: data.len() as u32,
            links,
        },
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_keep_filters_and_put_paging_last() {
        let q = Query::parse(Some("title=a+b&currentPage=2&pageSize=10"));
        let req = page_request(&q).unwrap();
        let p = page("/videos", &q, req, 25, vec![1, 2]);
        let rels: Vec<_> = p.pagination.links.iter().map(|l| l.rel.as_str()).collect();
        assert_eq!(rels, ["self", "first", "previous", "next", "last"]);
        assert_eq!(p.pagination.links[0].uri, "/videos?title=a+b&currentPage=2&pageSize=10");
        assert_eq!(p.pagination.pages_total, 3);
    }

    #[test]
    fn sort_reads_both_parameters_in_one_place() {
        let fields = [("name", 1), ("createdAt", 2), ("updatedAt", 3)];
        let s = sort(&Query::parse(Some("sortBy=createdAt&sortOrder=DESC")), &fields, false).unwrap();
        assert_eq!((s.by, s.descending), (Some(2), true));
        let s = sort(&Query::parse(None), &fields, true).unwrap();
        assert_eq!((s.by, s.descending), (None, true));
        let s = sort(&Query::parse(Some("sortBy=name")), &fields, true).unwrap();
        assert_eq!((s.by, s.descending), (Some(1), false));
        let e = sort(&Query::parse(Some("sortBy=ttl")), &fields, false).err().unwrap();
        assert_eq!(e.status(), 400);
        assert_eq!(sort_by_expected(&fields), "sortBy must be one of name, createdAt, updatedAt.");
        assert_eq!(sort_by_expected(&[("createdAt", 0), ("ttl", 1)]), "sortBy must be createdAt or ttl.");
        assert!(sort(&Query::parse(Some("sortOrder=up")), &fields, false).is_err());
    }

    #[test]
    fn page_bounds() {
        assert!(page_request(&Query::parse(Some("pageSize=101"))).is_err());
        assert!(page_request(&Query::parse(Some("pageSize=0"))).is_err());
        assert!(page_request(&Query::parse(Some("currentPage=x"))).is_err());
        let empty = page::<u8>("/videos", &Query::parse(None), page_request(&Query::parse(None)).unwrap(), 0, vec![]);
        assert_eq!((empty.pagination.pages_total, empty.pagination.items_total), (0, 0));
    }
}
