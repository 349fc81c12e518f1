"""REST endpoints for conversations and messages."""

from django.conf import settings
from django.urls import path
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api import int_param, json_object
from core.errors import Invalid
from core.http import AuthenticatedRequest

from . import search, selectors, services


class Create(serializers.Serializer):
    kind = serializers.ChoiceField(["direct", "group"])
    user_id = serializers.IntegerField(required=False, help_text="direct: the other user")
    title = serializers.CharField(
        required=False,
        help_text="group: 1 to 120 characters of plain text (trimmed)",
        max_length=120,
    )
    member_ids = serializers.ListField(
        child=serializers.IntegerField(),
        required=False,
        help_text="group: active users besides me (an unknown id is a 404); with me, at most "
        "LIMITS['GROUP_MAX_MEMBERS'] (1,000 by default) members",
    )


# The rules of groups, in the schema where REST clients read them (conversations.services).
GROUP_RULES = (
    "Groups: the creator is the owner; a group has at most {max} members (more: 400 "
    "invalid). Only owners add and remove members (others: 403); a direct conversation's "
    "members are fixed (400). Anyone may leave a group; when the last owner leaves, the "
    "longest-standing member becomes the owner."
)


# Consent (docs/subsystems/messaging.md, "Requests and invitations").
CONSENT_RULES = (
    "Consent: a direct conversation with someone who is not yet a contact is a request, and "
    "a person added to a group who is not a contact of the adder is invited: their "
    "membership is `pending` (state) until they accept (POST .../accept) or decline (POST "
    ".../decline). Contacts share a conversation both accepted, and neither blocked the "
    "other; their memberships start `accepted`. A pending member sees the conversation only "
    "in `GET /api/conversations?state=pending`, may read its messages, and cannot send "
    "(403 `not_accepted`). Until the other side accepts, the requester may send at most "
    "{request_max} messages to a direct conversation (403 `request_limit`). After a "
    "decline, the requester's sends and re-opening answer 403 `declined`. A block, either "
    "way, refuses new conversations, invitations and sends with 403 `blocked`."
)


def _group_rules() -> str:
    return GROUP_RULES.format(max=settings.LIMITS["GROUP_MAX_MEMBERS"]) + "\n\n" + _consent_rules()


def _consent_rules() -> str:
    return CONSENT_RULES.format(request_max=settings.LIMITS["REQUEST_MESSAGES_MAX"])


def _body_field() -> serializers.CharField:
    return serializers.CharField(
        min_length=1,
        max_length=settings.LIMITS["MESSAGE_MAX_CHARS"],
        help_text="1 to 4,000 characters of plain text, not only spaces",
    )


class Send(serializers.Serializer):
    body = _body_field()
    client_id = serializers.CharField(
        min_length=1,
        max_length=settings.LIMITS["CLIENT_ID_MAX_CHARS"],
        help_text="Chosen by the client; a retry stores once.",
    )


class Edit(serializers.Serializer):
    body = _body_field()


class Rename(serializers.Serializer):
    title = serializers.CharField(
        max_length=settings.LIMITS["GROUP_TITLE_MAX_CHARS"],
        help_text="1 to LIMITS['GROUP_TITLE_MAX_CHARS'] (120) characters of plain text (trimmed)",
    )


class Members(serializers.Serializer):
    user_ids = serializers.ListField(child=serializers.IntegerField())


MessageOut = inline_serializer(
    "Message",
    {
        "id": serializers.IntegerField(),
        "conversation_id": serializers.IntegerField(),
        "seq": serializers.IntegerField(),
        "sender_id": serializers.IntegerField(allow_null=True),
        "body": serializers.CharField(),
        "client_id": serializers.CharField(),
        "created_at": serializers.DateTimeField(),
        "edited_at": serializers.DateTimeField(allow_null=True),
        "deleted": serializers.BooleanField(),
        "change_seq": serializers.IntegerField(
            help_text="the conversation's change number of its last edit or deletion (0: never)"
        ),
    },
)


def _conversation_fields() -> dict:
    return {
        "id": serializers.IntegerField(),
        "kind": serializers.CharField(),
        "title": serializers.CharField(),
        "last_seq": serializers.IntegerField(),
        "last_change_seq": serializers.IntegerField(
            help_text="the last change number of its edits and deletions (the sync change cursor)"
        ),
        "last_message_at": serializers.DateTimeField(allow_null=True),
        "role": serializers.CharField(),
        "state": serializers.ChoiceField(
            ["accepted", "pending"], help_text="mine: pending is a request or an invitation"
        ),
        "invited_by": serializers.IntegerField(
            allow_null=True, help_text="who made the request or invitation (null: nobody)"
        ),
    }


ConversationOut = inline_serializer(
    "Conversation",
    {
        **_conversation_fields(),
        "members": serializers.ListField(
            child=serializers.DictField(),
            help_text="{user_id, role, state, last_read_seq} of every member, pending ones too",
        ),
    },
)
ConversationListItem = inline_serializer(
    "ConversationListItem",
    {
        **_conversation_fields(),
        "member_ids": serializers.ListField(child=serializers.IntegerField()),
        "last_read_seq": serializers.IntegerField(),
        "unread": serializers.IntegerField(),
        # None for a conversation without messages yet.
        "last_message": MessageOut.__class__(allow_null=True),
    },
    many=True,
)
HistoryOut = inline_serializer(
    "History",
    {
        "messages": MessageOut.__class__(many=True),
        "has_more": serializers.BooleanField(help_text="older messages exist"),
        "has_newer": serializers.BooleanField(
            required=False, help_text="with around only: newer messages exist"
        ),
    },
)


class ConversationListView(APIView):
    @extend_schema(
        operation_id="conversations_list",
        parameters=[
            OpenApiParameter(
                "state",
                str,
                enum=["accepted", "pending"],
                description="accepted (default): my conversations; pending: the requests and "
                "invitations waiting for me to accept or decline",
            )
        ],
        responses=ConversationListItem,
        summary="List my conversations (or my requests), most recently active first",
        description=_consent_rules(),
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        state = selectors.conversation_state_parse(request.query_params.get("state"))
        return Response(selectors.conversation_list(user_id=request.user.pk, state=state))

    @extend_schema(
        request=Create,
        responses={201: ConversationOut, 200: ConversationOut},
        summary="Create a direct or group conversation (direct: existing one is returned)",
        description=_group_rules(),
        extensions={"x-errors": ["404"]},  # an unknown user id
    )
    def post(self, request: AuthenticatedRequest) -> Response:
        data = json_object(request)
        if data.get("kind") == "direct":
            conversation, created = services.conversation_direct_get_or_create(
                user_id=request.user.pk, other_user_id=data.get("user_id")
            )
        elif data.get("kind") == "group":
            conversation = services.conversation_group_create(
                user_id=request.user.pk,
                title=data.get("title"),
                member_ids=data.get("member_ids", []),
            )
            created = True
        else:
            raise Invalid("kind must be 'direct' or 'group'.")
        body = selectors.conversation_get(user_id=request.user.pk, conversation_id=conversation.pk)
        return Response(body, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK)


class ConversationDetailView(APIView):
    @extend_schema(responses=ConversationOut, summary="One conversation with its members")
    def get(self, request: AuthenticatedRequest, conversation_id: int) -> Response:
        return Response(
            selectors.conversation_get(user_id=request.user.pk, conversation_id=conversation_id)
        )

    @extend_schema(
        request=Rename,
        responses=ConversationOut,
        summary="Rename a group (owners only)",
        description="Every accepted member's connections get `conversation.renamed`. "
        "Others: 403; a direct conversation: 400 (it has no title).",
    )
    def patch(self, request: AuthenticatedRequest, conversation_id: int) -> Response:
        data = json_object(request)
        services.conversation_rename(
            user_id=request.user.pk, conversation_id=conversation_id, title=data.get("title")
        )
        return Response(
            selectors.conversation_get(user_id=request.user.pk, conversation_id=conversation_id)
        )


class MembersView(APIView):
    @extend_schema(
        request=Members,
        responses=inline_serializer(
            "Added", {"added": serializers.ListField(child=serializers.IntegerField())}
        ),
        summary="Add members (owners only)",
        description=_group_rules(),
    )
    def post(self, request: AuthenticatedRequest, conversation_id: int) -> Response:
        data = json_object(request)
        added = services.members_add(
            user_id=request.user.pk,
            conversation_id=conversation_id,
            member_ids=data.get("user_ids"),
        )
        return Response({"added": added})


class MemberView(APIView):
    @extend_schema(
        summary="Remove a member (owners only)",
        responses={204: None},
        description=_group_rules(),
    )
    def delete(self, request: AuthenticatedRequest, conversation_id: int, user_id: int) -> Response:
        services.member_remove(
            user_id=request.user.pk, conversation_id=conversation_id, member_id=user_id
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


class LeaveView(APIView):
    @extend_schema(
        request=None, responses={204: None}, summary="Leave a group", description=_group_rules()
    )
    def post(self, request: AuthenticatedRequest, conversation_id: int) -> Response:
        services.conversation_leave(user_id=request.user.pk, conversation_id=conversation_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AcceptView(APIView):
    @extend_schema(
        request=None,
        responses=ConversationOut,
        summary="Accept my request or invitation (accepting twice is a no-op)",
        description=_consent_rules(),
    )
    def post(self, request: AuthenticatedRequest, conversation_id: int) -> Response:
        services.membership_accept(user_id=request.user.pk, conversation_id=conversation_id)
        return Response(
            selectors.conversation_get(user_id=request.user.pk, conversation_id=conversation_id)
        )


class DeclineView(APIView):
    @extend_schema(
        request=None,
        responses={204: None},
        summary="Decline my request or invitation (my membership is removed)",
        description=_consent_rules(),
        extensions={"x-errors": ["409"]},
    )
    def post(self, request: AuthenticatedRequest, conversation_id: int) -> Response:
        services.membership_decline(user_id=request.user.pk, conversation_id=conversation_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MessagesView(APIView):
    @extend_schema(
        parameters=[
            OpenApiParameter("before", int, description="Only messages with a smaller seq"),
            OpenApiParameter("after", int, description="Only messages with a larger seq"),
            OpenApiParameter(
                "around",
                int,
                description="The page with this seq in its middle (half the page before it); "
                "the answer says has_newer too",
            ),
            OpenApiParameter("limit", int, description="Page size, at most 200 (default 50)"),
        ],
        responses=HistoryOut,
        summary="History by sequence number",
    )
    def get(self, request: AuthenticatedRequest, conversation_id: int) -> Response:
        page = selectors.message_history(
            user_id=request.user.pk,
            conversation_id=conversation_id,
            before_seq=int_param(request, "before"),
            after_seq=int_param(request, "after"),
            around_seq=int_param(request, "around"),
            limit=int_param(request, "limit"),
        )
        return Response(page)

    @extend_schema(
        request=Send,
        responses={201: MessageOut, 200: MessageOut},
        summary="Send",
        description=_consent_rules(),
    )
    def post(self, request: AuthenticatedRequest, conversation_id: int) -> Response:
        data = json_object(request)
        message, created = services.message_send(
            sender_id=request.user.pk,
            conversation_id=conversation_id,
            body=data.get("body"),
            client_id=data.get("client_id"),
        )
        return Response(
            selectors.message_serialize(message),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


SnippetPiece = inline_serializer(
    "SnippetPiece",
    {"text": serializers.CharField(), "hit": serializers.BooleanField()},
)
SearchResult = inline_serializer(
    "SearchResult",
    {
        "id": serializers.IntegerField(),
        "conversation_id": serializers.IntegerField(),
        "seq": serializers.IntegerField(),
        "sender_id": serializers.IntegerField(allow_null=True),
        "created_at": serializers.DateTimeField(),
        "edited_at": serializers.DateTimeField(allow_null=True),
        "rank": serializers.FloatField(help_text="ts_rank_cd; 0 on SQLite (no ranking)"),
        "snippet": SnippetPiece.__class__(
            many=True, help_text="the snippet as plain-text pieces, hits marked"
        ),
        "snippet_html": serializers.CharField(
            help_text="the same, HTML-escaped, hits in <mark>: safe to insert as HTML"
        ),
    },
)
SearchOut = inline_serializer(
    "Search",
    {
        "results": SearchResult.__class__(many=True),
        "next": serializers.CharField(
            allow_null=True, help_text="the cursor of the next page; null on the last one"
        ),
    },
)
SEARCH_RULES = (
    "Full-text search of the messages of the conversations I am a member of (pending "
    "memberships too, as history; deleted messages never), best first (ts_rank_cd, then "
    'newest). `q` is read as a web search (words, "quoted phrases", `or`, `-word`), in '
    "simple and in my profile's language; each message is indexed in its author's "
    "language. `q`: 1 to {q_max} characters, with at least one word that is not a stop "
    "word (else 400 `invalid`). Pages of `limit` results (default {page}, at most {page_max}); "
    "`cursor` is the `next` of the previous page. Snippets: `snippet` (plain-text pieces) and "
    "`snippet_html` (escaped, hits in <mark>). docs/subsystems/search.md."
)


class SearchView(APIView):
    @extend_schema(
        operation_id="messages_search",
        parameters=[
            OpenApiParameter("q", str, required=True, description="what to look for"),
            OpenApiParameter("conversation", int, description="only this conversation"),
            OpenApiParameter("cursor", str, description="the `next` of the previous page"),
            OpenApiParameter("limit", int, description="page size, at most 50 (default 20)"),
        ],
        responses=SearchOut,
        summary="Search my conversations' messages",
        extensions={"x-errors": ["404"]},  # ?conversation= of no conversation
        description=SEARCH_RULES.format(
            q_max=settings.LIMITS["SEARCH_QUERY_MAX_CHARS"],
            page=settings.LIMITS["SEARCH_PAGE_DEFAULT"],
            page_max=settings.LIMITS["SEARCH_PAGE_MAX"],
        ),
    )
    def get(self, request: AuthenticatedRequest) -> Response:
        page = search.message_search(
            user_id=request.user.pk,
            query=search.search_query_parse(request.query_params.get("q")),
            conversation_id=int_param(request, "conversation"),
            cursor=search.search_cursor_parse(request.query_params.get("cursor")),
            limit=int_param(request, "limit"),
        )
        return Response(page)


class MessageView(APIView):
    @extend_schema(request=Edit, responses=MessageOut, summary="Edit my message")
    def patch(self, request: AuthenticatedRequest, message_id: int) -> Response:
        data = json_object(request)
        message = services.message_edit(
            user_id=request.user.pk, message_id=message_id, body=data.get("body")
        )
        return Response(selectors.message_serialize(message))

    # 200 with the message, as the edit and the socket's message.delete answer: the body is
    # "" and deleted is true (drf-spectacular documents a bare DELETE response as 204).
    @extend_schema(responses={200: MessageOut}, summary="Delete my message (soft)")
    def delete(self, request: AuthenticatedRequest, message_id: int) -> Response:
        message = services.message_delete(user_id=request.user.pk, message_id=message_id)
        return Response(selectors.message_serialize(message))


urlpatterns = [
    path("conversations", ConversationListView.as_view(), name="api-conversations"),
    path(
        "conversations/<int:conversation_id>",
        ConversationDetailView.as_view(),
        name="api-conversation",
    ),
    path("conversations/<int:conversation_id>/members", MembersView.as_view(), name="api-members"),
    path(
        "conversations/<int:conversation_id>/members/<int:user_id>",
        MemberView.as_view(),
        name="api-member",
    ),
    path("conversations/<int:conversation_id>/leave", LeaveView.as_view(), name="api-leave"),
    path("conversations/<int:conversation_id>/accept", AcceptView.as_view(), name="api-accept"),
    path("conversations/<int:conversation_id>/decline", DeclineView.as_view(), name="api-decline"),
    path(
        "conversations/<int:conversation_id>/messages", MessagesView.as_view(), name="api-messages"
    ),
    path("messages/<int:message_id>", MessageView.as_view(), name="api-message"),
    path("search", SearchView.as_view(), name="api-search"),
]
